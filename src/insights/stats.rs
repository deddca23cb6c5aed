//! Small statistics shared by the insights: per-currency money sums, rates, quantiles.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::snapshot::{NameId, Snapshot};

/// Money of one currency: a sum over the deals that have an amount, and how many did not.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MoneyAcc {
    /// Sum of amounts.
    pub sum: f64,
    /// Deals with an amount.
    pub with_amount: u64,
    /// Deals without an amount (counted in volumes, not in sums or averages).
    pub without_amount: u64,
}

impl MoneyAcc {
    /// Adds one deal's amount (or its absence).
    pub fn add(&mut self, amount: Option<f64>) {
        match amount {
            Some(a) => {
                self.sum += a;
                self.with_amount += 1;
            }
            None => self.without_amount += 1,
        }
    }

    /// Mean amount, when any deal has one.
    pub fn mean(&self) -> Option<f64> {
        (self.with_amount > 0).then(|| self.sum / self.with_amount as f64)
    }
}

/// Money accumulators per currency (never summed across currencies).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerCurrency(pub BTreeMap<NameId, MoneyAcc>);

impl PerCurrency {
    /// Adds one deal to its currency.
    pub fn add(&mut self, currency: NameId, amount: Option<f64>) {
        self.0.entry(currency).or_default().add(amount);
    }

    /// Sums by currency name (currencies with no amount at all included, as 0).
    pub fn sums(&self, snapshot: &Snapshot) -> BTreeMap<String, f64> {
        self.0
            .iter()
            .map(|(c, m)| (snapshot.names.name(*c).to_owned(), m.sum))
            .collect()
    }

    /// Means by currency name (currencies whose deals have no amount left out).
    pub fn means(&self, snapshot: &Snapshot) -> BTreeMap<String, f64> {
        self.0
            .iter()
            .filter_map(|(c, m)| Some((snapshot.names.name(*c).to_owned(), m.mean()?)))
            .collect()
    }

    /// Deals without an amount, all currencies.
    pub fn without_amount(&self) -> u64 {
        self.0.values().map(|m| m.without_amount).sum()
    }
}

/// `part / whole`, or `None` when `whole` is zero.
pub fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Count, mean and quartiles of a set of values.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Distribution {
    /// Values (missing ones are not counted).
    pub count: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub median: f64,
    /// 75th percentile.
    pub p75: f64,
}

impl Distribution {
    /// The distribution of `values` (reordered in place), or `None` when empty. Percentiles
    /// interpolate linearly between order statistics (position `(n − 1)·p`, the default of
    /// numpy, R type 7 and PostgreSQL's `percentile_cont`).
    pub fn of(values: &mut [f64]) -> Option<Distribution> {
        if values.is_empty() {
            return None;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let [p25, median, p75] = quantiles(values, [0.25, 0.5, 0.75]);
        Some(Distribution {
            count: values.len(),
            mean,
            p25,
            median,
            p75,
        })
    }
}

/// The `p` quantile of non-empty `values` (reordered in place) in linear time: selection of the
/// lower order statistic, then the minimum of the values above it.
pub fn quantile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let h = (values.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let (_, lower, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let lower = *lower;
    let fraction = h - lo as f64;
    if fraction == 0.0 || above.is_empty() {
        return lower;
    }
    let upper = above.iter().copied().fold(f64::INFINITY, f64::min);
    lower + fraction * (upper - lower)
}

/// Several quantiles of the same values, each equal to [`quantile`]`(values, p)`, for less work
/// than one [`quantile`] call per level: the level nearest the median is selected first, over
/// all values; every later selection runs only between the positions already fixed around it
/// (for quartiles: the median over all values, then p25 and p75 each over one half).
pub fn quantiles<const N: usize>(values: &mut [f64], ps: [f64; N]) -> [f64; N] {
    let mut out = [f64::NAN; N];
    if values.is_empty() {
        return out;
    }
    let last = values.len() - 1;
    let mut order: [usize; N] = std::array::from_fn(|i| i);
    order.sort_by(|&a, &b| (ps[a] - 0.5).abs().total_cmp(&(ps[b] - 0.5).abs()));
    // Positions whose order statistic is in place: everything before one is ≤ it, everything
    // after it is ≥ it (in `f64::total_cmp` order), so a position between two of them is
    // selected among the values between them alone.
    let mut fixed: Vec<usize> = Vec::with_capacity(N);
    for k in order {
        let h = last as f64 * ps[k].clamp(0.0, 1.0);
        let lo = h.floor() as usize;
        if let Err(at) = fixed.binary_search(&lo) {
            let start = at.checked_sub(1).map_or(0, |i| fixed[i] + 1);
            let end = fixed.get(at).copied().unwrap_or(values.len());
            values[start..end].select_nth_unstable_by(lo - start, f64::total_cmp);
            fixed.insert(at, lo);
        }
        let lower = values[lo];
        let fraction = h - lo as f64;
        out[k] = if fraction == 0.0 || lo == last {
            lower
        } else {
            // Every value after `lo` is above it, as in `quantile`.
            let upper = values[lo + 1..].iter().copied().fold(f64::INFINITY, f64::min);
            lower + fraction * (upper - lower)
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let mut v = vec![7.0, 1.0, 3.0, 5.0];
        assert_eq!(quantile(&mut v, 0.5), 4.0);
        assert_eq!(quantile(&mut v, 0.25), 2.5);
        assert_eq!(quantile(&mut v, 0.75), 5.5);
        let mut one = vec![9.0];
        assert_eq!(quantile(&mut one, 0.75), 9.0);
        let d = Distribution::of(&mut [2.0, 2.0, 8.0]).unwrap();
        assert_eq!((d.count, d.mean, d.median), (3, 4.0, 2.0));
        assert!(Distribution::of(&mut []).is_none());
    }

    #[test]
    fn quantiles_at_once_equal_one_by_one() {
        let mut state = 12_345_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in (1..40).chain([99, 100, 101, 1_000, 4_097]) {
            // Few distinct values (ties) and many.
            let spread = [3, 1_000_000][n % 2];
            let values: Vec<f64> = (0..n).map(|_| (next() % spread) as f64 / 7.0).collect();
            let levels = [0.25, 0.5, 0.75];
            let one_by_one = levels.map(|p| quantile(&mut values.clone(), p));
            assert_eq!(quantiles(&mut values.clone(), levels), one_by_one, "{n}");
            let odd = [0.0, 0.1, 0.9, 1.0, 0.5, 0.33];
            let one_by_one = odd.map(|p| quantile(&mut values.clone(), p));
            assert_eq!(quantiles(&mut values.clone(), odd), one_by_one, "{n}");
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let d = Distribution::of(&mut values.clone()).unwrap();
            assert_eq!(d.median, quantile(&mut sorted, 0.5));
        }
        assert!(quantiles(&mut [], [0.5])[0].is_nan());
    }

    #[test]
    fn money_keeps_missing_amounts_out_of_means() {
        let mut m = MoneyAcc::default();
        m.add(Some(10.0));
        m.add(None);
        m.add(Some(20.0));
        assert_eq!(
            (m.sum, m.with_amount, m.without_amount, m.mean()),
            (30.0, 2, 1, Some(15.0))
        );
        assert_eq!(MoneyAcc::default().mean(), None);
        assert_eq!(ratio(1, 0), None);
    }
}
