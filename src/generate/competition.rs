//! The named competitor of a deal (`competitor`) and the loss reason of a lost deal
//! (`loss_reason`).
//!
//! Both are drawn *after* the outcome, from a random stream of their own, so the true win model
//! and every other generated value stay exactly what they were without them. The competitor is
//! drawn given the outcome: a won deal picks competitor *c* with weight `share(c) · edge(c)`, a
//! lost one with weight `share(c)`, where `edge(c)` depends on the deal's sector and size. Within
//! one sector and size, the odds of winning against *c* are then the odds of the whole
//! population times `edge(c)` over a constant, so win rates against competitors differ exactly
//! by the documented factors (`docs/generator.md`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::domain::Status;

/// A competitor: name, share of the deals that name a competitor, and its effect on our odds of
/// winning (`edge`; below 1: a strong competitor we lose to more often).
pub(crate) struct Competitor {
    /// Name as written in the CRM.
    pub name: &'static str,
    /// Relative share among deals with a named competitor.
    pub share: f64,
    /// Odds factor everywhere else.
    pub edge: f64,
    /// Odds factor on deals of at least [`LARGE_DEAL`] (replaces `edge`), if different.
    pub edge_large: Option<f64>,
    /// Odds factor on deals below [`SMALL_DEAL`] (replaces `edge`), if different.
    pub edge_small: Option<f64>,
    /// Sectors where the odds factor differs, and the factor there (wins over the size rule).
    pub sectors: &'static [(&'static str, f64)],
    /// Weight of "competitor" among the reasons of a deal lost against it.
    pub lost_to_weight: f64,
}

/// Amounts at or above this are "large" for the competitors' strengths.
pub(crate) const LARGE_DEAL: f64 = 50_000.0;
/// Amounts below this are "small" for the competitors' strengths.
pub(crate) const SMALL_DEAL: f64 = 10_000.0;

/// Chance that a deal with at least one competing vendor names its main competitor.
pub(crate) const NAMED_SHARE: f64 = 0.8;
/// Chance that a lost deal records a loss reason.
pub(crate) const REASON_SHARE: f64 = 0.9;

/// The competitors. Shares sum to 1; the last two are rare on purpose (an `(other)` row).
pub(crate) const COMPETITORS: [Competitor; 7] = [
    Competitor {
        name: "Quantix",
        share: 0.30,
        edge: 0.5,
        edge_large: Some(0.25),
        edge_small: None,
        sectors: &[("retail", 1.0)],
        lost_to_weight: 6.0,
    },
    Competitor {
        name: "Salient",
        share: 0.24,
        edge: 1.0,
        edge_large: None,
        edge_small: None,
        sectors: &[("finance", 0.4), ("healthcare", 0.4)],
        lost_to_weight: 5.0,
    },
    Competitor {
        name: "Brightlane",
        share: 0.20,
        edge: 2.0,
        edge_large: None,
        edge_small: Some(0.7),
        sectors: &[],
        lost_to_weight: 2.5,
    },
    Competitor {
        name: "Kestrel",
        share: 0.14,
        edge: 1.3,
        edge_large: None,
        edge_small: None,
        sectors: &[("public_sector", 0.35)],
        lost_to_weight: 4.0,
    },
    Competitor {
        name: "in-house build",
        share: 0.09,
        edge: 1.5,
        edge_large: None,
        edge_small: None,
        sectors: &[],
        lost_to_weight: 2.0,
    },
    Competitor {
        name: "Orbis",
        share: 0.02,
        edge: 1.0,
        edge_large: None,
        edge_small: None,
        sectors: &[],
        lost_to_weight: 4.0,
    },
    Competitor {
        name: "Nimbus Labs",
        share: 0.01,
        edge: 1.0,
        edge_large: None,
        edge_small: None,
        sectors: &[],
        lost_to_weight: 4.0,
    },
];

/// The reasons other than "competitor", with their weights, for a lost deal.
pub(crate) const OTHER_REASONS: [(&str, f64); 4] = [
    ("price", 3.0),
    ("no decision", 3.0),
    ("timing", 2.0),
    ("product fit", 2.0),
];

/// The loss reason that says a competitor took the deal.
pub(crate) const LOST_TO_COMPETITOR: &str = "competitor";
/// Weight of "competitor" among the reasons of a lost deal with competing vendors but none named.
const UNNAMED_LOST_TO_WEIGHT: f64 = 3.0;

impl Competitor {
    /// The odds factor of this competitor on a deal of `sector` and `amount`.
    pub(crate) fn edge_on(&self, sector: Option<&str>, amount: Option<f64>) -> f64 {
        if let Some((_, e)) = self.sectors.iter().find(|(s, _)| Some(*s) == sector) {
            return *e;
        }
        match amount {
            Some(a) if a >= LARGE_DEAL => self.edge_large.unwrap_or(self.edge),
            Some(a) if a < SMALL_DEAL => self.edge_small.unwrap_or(self.edge),
            _ => self.edge,
        }
    }
}

/// What is drawn for one deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Competition {
    /// The named main competitor, if any.
    pub competitor: Option<&'static str>,
    /// The loss reason (lost deals only).
    pub loss_reason: Option<&'static str>,
}

/// Mixed into the deals' key: a stream family apart from the deals' own, so these draws never
/// shift any other value.
const KEY_SALT: [u8; 4] = *b"comp";

fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut target = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i;
        }
        target -= w;
    }
    weights.len().saturating_sub(1)
}

/// Draws the competitor and loss reason of deal `index` once its outcome is known; `deals` is
/// the generator's per-deal generator (its key, salted, seeds these draws).
pub(crate) fn draw(
    deals: &ChaCha8Rng,
    index: usize,
    vendors: usize,
    status: Status,
    sector: Option<&str>,
    amount: Option<f64>,
) -> Competition {
    let mut key = deals.get_seed();
    for (k, s) in key.iter_mut().zip(KEY_SALT) {
        *k ^= s;
    }
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(index as u64);
    let named = vendors > 0 && rng.gen::<f64>() < NAMED_SHARE;
    let competitor = named.then(|| {
        let weights: Vec<f64> = COMPETITORS
            .iter()
            .map(|c| match status {
                Status::Won => c.share * c.edge_on(sector, amount),
                Status::Lost | Status::Open => c.share,
            })
            .collect();
        &COMPETITORS[pick(&mut rng, &weights)]
    });
    let loss_reason = (status == Status::Lost && rng.gen::<f64>() < REASON_SHARE).then(|| {
        let lost_to = match (competitor, vendors) {
            (Some(c), _) => c.lost_to_weight,
            (None, 0) => 0.0,
            (None, _) => UNNAMED_LOST_TO_WEIGHT,
        };
        let mut weights = vec![lost_to];
        weights.extend(OTHER_REASONS.iter().map(|r| r.1));
        match pick(&mut rng, &weights) {
            0 => LOST_TO_COMPETITOR,
            i => OTHER_REASONS[i - 1].0,
        }
    });
    Competition {
        competitor: competitor.map(|c| c.name),
        loss_reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_sum_to_one_and_sector_rules_win_over_size() {
        let total: f64 = COMPETITORS.iter().map(|c| c.share).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let quantix = &COMPETITORS[0];
        assert_eq!(quantix.edge_on(Some("software"), Some(80_000.0)), 0.25);
        assert_eq!(quantix.edge_on(Some("retail"), Some(80_000.0)), 1.0);
        assert_eq!(quantix.edge_on(None, None), 0.5);
        assert_eq!(COMPETITORS[2].edge_on(Some("software"), Some(9_990.0)), 0.7);
    }

    #[test]
    fn no_vendor_means_no_competitor_and_never_lost_to_one() {
        let base = ChaCha8Rng::seed_from_u64(5);
        for i in 0..2_000 {
            let c = draw(&base, i, 0, Status::Lost, Some("retail"), Some(1_000.0));
            assert_eq!(c.competitor, None);
            assert_ne!(c.loss_reason, Some(LOST_TO_COMPETITOR));
            let open = draw(&base, i, 2, Status::Open, None, None);
            assert_eq!(open.loss_reason, None);
            let won = draw(&base, i, 2, Status::Won, None, None);
            assert_eq!(won.loss_reason, None);
        }
    }

    /// On generated data: the win rate against each frequent competitor follows its strength,
    /// the documented sector and size effects show, and loss reasons fit the competitor.
    #[test]
    fn win_rates_follow_the_competitors_strengths_on_20k_deals() {
        use crate::generate::{generate, GeneratorConfig};
        let history = generate(&GeneratorConfig {
            deals: 20_000,
            seed: 1,
            with_activities: false,
            ..GeneratorConfig::default()
        });
        let text = |o: &crate::domain::Opportunity, k: &str| o.attributes.get(k).map(|v| v.to_text());
        let rate = |keep: &dyn Fn(&crate::domain::Opportunity) -> bool| {
            let closed: Vec<_> = history
                .opportunities
                .iter()
                .filter(|o| o.status.is_closed() && keep(o))
                .collect();
            let won = closed.iter().filter(|o| o.status == Status::Won).count();
            (won as f64 / closed.len().max(1) as f64, closed.len())
        };
        let against = |name: &str| rate(&|o| text(o, "competitor").as_deref() == Some(name));
        let (quantix, n) = against("Quantix");
        let (salient, _) = against("Salient");
        let (brightlane, _) = against("Brightlane");
        assert!(n > 1_000, "{n}");
        assert!(
            quantix + 0.08 < salient && salient + 0.08 < brightlane,
            "{quantix} {salient} {brightlane}"
        );
        // Quantix is stronger on large deals, Salient in finance.
        let (q_large, _) = rate(&|o| {
            text(o, "competitor").as_deref() == Some("Quantix")
                && o.amount.is_some_and(|a| a >= LARGE_DEAL)
                && o.sector.as_deref() != Some("retail")
        });
        assert!(q_large + 0.05 < quantix, "{q_large} {quantix}");
        let (s_finance, _) = rate(&|o| {
            text(o, "competitor").as_deref() == Some("Salient") && o.sector.as_deref() == Some("finance")
        });
        assert!(s_finance + 0.05 < salient, "{s_finance} {salient}");
        // A realistic share names a competitor; only deals with competing vendors do.
        let named = history
            .opportunities
            .iter()
            .filter(|o| o.attributes.contains_key("competitor"))
            .count();
        assert!((9_000..=13_000).contains(&named), "{named}");
        for o in &history.opportunities {
            let vendors = o.attributes.get("competitors").map(|v| v.to_text());
            if vendors.as_deref() == Some("0") {
                assert!(!o.attributes.contains_key("competitor"), "{:?}", o.external_id);
            }
            let reason = text(o, "loss_reason");
            assert!(
                reason.is_none() || o.status == Status::Lost,
                "only lost deals have a reason"
            );
            if reason.as_deref() == Some(LOST_TO_COMPETITOR) {
                assert_ne!(vendors.as_deref(), Some("0"));
            }
        }
    }
}
