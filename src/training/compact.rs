//! Closed deals in compact columns: what training reads of each deal, read once.
//!
//! Training used to keep every [`Opportunity`] alive and read each feature's raw value again for
//! every encoder fit and design matrix (once per fold, then for the holdout fit, the refit, the
//! success factors and the drift profile). Here each deal is read once, with the same readers
//! ([`numeric_value`], [`category_value`]), into one `f64` per numeric source (NaN = missing)
//! and one level code per categorical source; the deal itself can then be dropped. A million
//! closed deals take ~60 MB this way against well over 500 MB as opportunities.
//!
//! Encoders, design matrices, scores, success factors and the drift profile are computed from
//! these columns with the same arithmetic, in the same order, as from the deals: the unit tests
//! compare both paths value for value.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use ndarray::{Array2, ShapeBuilder};

use crate::domain::history::ATTRIBUTE_PREFIX;
use crate::domain::{Opportunity, Status};
use crate::features::as_of::GROWING_FIELDS;
use crate::features::encode::{encode_category, encode_numeric};
use crate::features::fitted::{categorical_encoder, numeric_encoder, quantile_edges};
use crate::features::raw::{category_value, numeric_value, NumericValue};
use crate::features::{
    CoreField, Encoder, FeatureCode, FeatureSpec, FittedFeature, FittedFeatures, Kind, NumericEncoder,
    Source, MISSING_LEVEL, OTHER_LEVEL,
};
use crate::model::profile::{FeatureProfile, ProfileBins, TrainingProfile, PROFILE_BINS};

/// Tracked fields every row's reading depends on, whatever its sources
/// ([`CompactDeals::fields_read`]): these and the interaction measures ([`GROWING_FIELDS`]).
const ALWAYS_READ: [&str; 3] = ["status", "created_at", "closed_at"];

/// Level code of an empty categorical field.
const NO_LEVEL: u32 = u32::MAX;

/// The sources training reads: every feature of `specs` (the spec being trained, and the active
/// model's, whose holdout AUC the promotion gate measures), plus sector and contact role, which
/// the success factors break numeric references down by.
pub fn sources_for(specs: &[&FeatureSpec]) -> Vec<(String, Kind)> {
    let mut sources: Vec<(String, Kind)> = Vec::new();
    let fixed = [
        (CoreField::Sector.name().to_owned(), Kind::Categorical),
        (CoreField::ContactRole.name().to_owned(), Kind::Categorical),
    ];
    let from_specs = specs
        .iter()
        .flat_map(|s| s.features().iter().map(|f| (f.name().to_owned(), f.kind())));
    for source in from_specs.chain(fixed) {
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    sources
}

/// Whether any of `sources` is a custom attribute (read from the deals' attributes) rather than
/// a core field.
pub fn reads_attributes(sources: &[(String, Kind)]) -> bool {
    sources.iter().any(|(name, _)| is_attribute(name))
}

fn is_attribute(name: &str) -> bool {
    core_field(name).is_none()
}

/// The core field source `name` reads, if it is one.
fn core_field(name: &str) -> Option<CoreField> {
    match Source::parse(name) {
        Some(Source::Core(field)) => Some(field),
        _ => None,
    }
}

/// A numeric source: one value per row, NaN when missing or not a number.
#[derive(Debug, Clone)]
struct NumericColumn {
    name: String,
    /// The core field `name` reads, parsed once (not once a row).
    core: Option<CoreField>,
    values: Vec<f64>,
    /// Rows with a value, by ascending value (`f64::total_cmp`), filled by `finish`.
    by_value: Vec<u32>,
}

/// A categorical source: one level code per row (`NO_LEVEL` when empty).
#[derive(Debug, Clone)]
struct CategoricalColumn {
    name: String,
    /// The core field `name` reads, parsed once (not once a row).
    core: Option<CoreField>,
    levels: Vec<String>,
    lookup: HashMap<String, u32>,
    codes: Vec<u32>,
}

/// Runs `work` on every item, half of them on a second thread: at the end of a load, each
/// numeric column's sort or reordering is a pass of its own over millions of rows, and the
/// reading threads are done.
fn on_two_threads<T: Send>(items: &mut [T], work: impl Fn(&mut T) + Sync) {
    let (first, second) = items.split_at_mut(items.len() / 2);
    std::thread::scope(|scope| {
        scope.spawn(|| first.iter_mut().for_each(&work));
        second.iter_mut().for_each(&work);
    });
}

/// Closed deals, compact: outcome, closing time, id, and one column per source.
#[derive(Debug, Clone)]
pub struct CompactDeals {
    now: DateTime<Utc>,
    ids: String,
    id_ends: Vec<usize>,
    closed_at: Vec<Option<DateTime<Utc>>>,
    won: Vec<bool>,
    numeric: Vec<NumericColumn>,
    categorical: Vec<CategoricalColumn>,
    open_ignored: usize,
}

impl CompactDeals {
    /// Whether any of the sources read is a custom attribute ([`reads_attributes`]).
    pub fn reads_attributes(&self) -> bool {
        let mut names =
            (self.numeric.iter().map(|c| &c.name)).chain(self.categorical.iter().map(|c| &c.name));
        names.any(|name| is_attribute(name))
    }

    /// The tracked fields (named as in `domain::history::tracked_values`) whose values what
    /// [`CompactDeals::push`] reads of a row can depend on: the fields of its sources, the dates
    /// and status (the label, the age), and the interaction measures (read by several core
    /// sources, and derived from activities). A snapshot rebuilt without the recorded changes of
    /// any other field (a deal's name, its stage, an attribute no source reads) reads the same.
    pub fn fields_read(&self) -> BTreeSet<String> {
        let always = ALWAYS_READ.iter().chain(&GROWING_FIELDS);
        let mut fields: BTreeSet<String> = always.map(|f| (*f).to_owned()).collect();
        let names = (self.numeric.iter().map(|c| &c.name)).chain(self.categorical.iter().map(|c| &c.name));
        for name in names {
            match Source::of(name) {
                Source::Core(field) => {
                    fields.insert(field.name().to_owned());
                }
                Source::Attribute(attribute) => {
                    fields.insert(format!("{ATTRIBUTE_PREFIX}{attribute}"));
                }
            }
        }
        fields
    }

    /// An empty set reading `sources` (see [`sources_for`]) as of `now`.
    pub fn new(sources: &[(String, Kind)], now: DateTime<Utc>) -> CompactDeals {
        let mut numeric = Vec::new();
        let mut categorical = Vec::new();
        for (name, kind) in sources {
            match kind {
                Kind::Numeric => numeric.push(NumericColumn {
                    name: name.clone(),
                    core: core_field(name),
                    values: Vec::new(),
                    by_value: Vec::new(),
                }),
                Kind::Categorical => categorical.push(CategoricalColumn {
                    name: name.clone(),
                    core: core_field(name),
                    levels: Vec::new(),
                    lookup: HashMap::new(),
                    codes: Vec::new(),
                }),
            }
        }
        CompactDeals {
            now,
            ids: String::new(),
            id_ends: Vec::new(),
            closed_at: Vec::new(),
            won: Vec::new(),
            numeric,
            categorical,
            open_ignored: 0,
        }
    }

    /// Reads every deal of `deals` (open ones are counted and skipped).
    pub fn from_deals(deals: &[Opportunity], sources: &[(String, Kind)], now: DateTime<Utc>) -> CompactDeals {
        let mut data = CompactDeals::new(sources, now);
        for deal in deals {
            data.push(deal);
        }
        data.finish();
        data
    }

    /// Reads one deal: a closed one becomes a row, an open one is only counted.
    pub fn push(&mut self, opp: &Opportunity) {
        if !opp.status.is_closed() {
            self.open_ignored += 1;
            return;
        }
        self.ids.push_str(opp.external_id.as_str());
        self.id_ends.push(self.ids.len());
        self.closed_at.push(opp.closed_at);
        self.won.push(opp.status == Status::Won);
        for column in &mut self.numeric {
            let source = column.core.map_or_else(|| Source::of(&column.name), Source::Core);
            let value = match numeric_value(&source, opp, self.now) {
                NumericValue::Present(v) => v,
                NumericValue::Missing | NumericValue::NotANumber(_) => f64::NAN,
            };
            column.values.push(value);
        }
        for column in &mut self.categorical {
            let source = column.core.map_or_else(|| Source::of(&column.name), Source::Core);
            // The rows of one deal's snapshots come one after the other and mostly share their
            // levels: the previous row's code is checked before the lookup's hash.
            let previous = |level: &str| {
                (column.codes.last().copied())
                    .filter(|&code| code != NO_LEVEL && column.levels[code as usize] == level)
            };
            let code = match category_value(&source, opp) {
                None => NO_LEVEL,
                Some(level) => {
                    match previous(level.as_ref()).or_else(|| column.lookup.get(level.as_ref()).copied()) {
                        Some(code) => code,
                        None => {
                            let code = column.levels.len() as u32;
                            column.levels.push(level.clone().into_owned());
                            column.lookup.insert(level.into_owned(), code);
                            code
                        }
                    }
                }
            };
            column.codes.push(code);
        }
    }

    /// Makes room for about `rows` more rows in every column, for a reader that can tell how
    /// many are coming (a snapshot load, from the count of closed deals): columns grown by
    /// doubling are copied at every step and fault in about twice their final memory, millions
    /// of rows on snapshot data. A hint only: room that cannot be had is left to grow as rows
    /// come.
    pub fn reserve(&mut self, rows: usize) {
        let id_bytes = self.ids.len().checked_div(self.id_ends.len()).unwrap_or(0);
        let _ = self.ids.try_reserve(rows.saturating_mul(id_bytes));
        let _ = self.id_ends.try_reserve(rows);
        let _ = self.closed_at.try_reserve(rows);
        let _ = self.won.try_reserve(rows);
        for column in &mut self.numeric {
            let _ = column.values.try_reserve(rows);
        }
        for column in &mut self.categorical {
            let _ = column.codes.try_reserve(rows);
        }
    }

    /// Ends reading: sorts each numeric column's rows by value (quantiles then need no sort).
    pub fn finish(&mut self) {
        on_two_threads(&mut self.numeric, |column| {
            // (value's total-order key, row) pairs sorted whole: the order of a stable sort of
            // the rows by `f64::total_cmp` (ties by row), without looking each value up through
            // its row at every comparison (millions of rows on snapshot data).
            let mut keyed: Vec<(i64, u32)> = (column.values.iter().enumerate())
                .filter(|(_, v)| !v.is_nan())
                .map(|(row, v)| (total_order_key(*v), row as u32))
                .collect();
            keyed.sort_unstable();
            column.by_value = keyed.into_iter().map(|(_, row)| row).collect();
        });
        for column in &mut self.categorical {
            // The lookup only serves reading.
            column.lookup = HashMap::new();
        }
    }

    /// Ends reading like [`CompactDeals::finish`], with the rows first put in closing order:
    /// by (`closed_at`, id), the rows of one deal (its snapshots, pushed one after the other)
    /// kept in the order they came, and the level codes numbered as reading the rows in that
    /// order numbers them. The columns are then those of the same rows pushed in closing order,
    /// so a reader may take the deals in another order (row-id order reads a database's history
    /// on neighbouring pages) and train on exactly what the closing order gives.
    pub fn finish_in_closing_order(&mut self) {
        let n = self.len();
        // A deal's rows: a run of the same id and closing time, keyed by that closing time as
        // integers, so that most comparisons of millions of runs compare integers, and the ids
        // only on ties.
        let mut runs = Vec::new();
        let mut start = 0;
        for row in 1..=n {
            if row == n || self.id(row) != self.id(start) || self.closed_at[row] != self.closed_at[start] {
                runs.push((closing_key(self.closed_at[start]), start, row));
                start = row;
            }
        }
        // Stable: runs of equal keys keep their order, as rows of equal keys would.
        runs.sort_by(|a, b| (a.0.cmp(&b.0)).then_with(|| self.id(a.1).cmp(self.id(b.1))));
        let order: Vec<usize> = runs.iter().flat_map(|&(_, start, end)| start..end).collect();
        if order.iter().enumerate().any(|(i, &row)| i != row) {
            self.reorder(&order);
        }
        self.finish();
    }

    /// Puts row `order[i]` at row `i` (`order`: a permutation of the rows).
    fn reorder(&mut self, order: &[usize]) {
        let mut ids = String::with_capacity(self.ids.len());
        let mut id_ends = Vec::with_capacity(order.len());
        for &row in order {
            ids.push_str(self.id(row));
            id_ends.push(ids.len());
        }
        (self.ids, self.id_ends) = (ids, id_ends);
        self.closed_at = order.iter().map(|&row| self.closed_at[row]).collect();
        self.won = order.iter().map(|&row| self.won[row]).collect();
        on_two_threads(&mut self.numeric, |column| {
            column.values = order.iter().map(|&row| column.values[row]).collect();
        });
        for column in &mut self.categorical {
            // New code of each old one, given at its first row in the new order.
            let mut renumbered = vec![NO_LEVEL; column.levels.len()];
            let mut first_seen: Vec<usize> = Vec::with_capacity(column.levels.len());
            let codes = (order.iter())
                .map(|&row| match column.codes[row] {
                    NO_LEVEL => NO_LEVEL,
                    old => {
                        let new = &mut renumbered[old as usize];
                        if *new == NO_LEVEL {
                            *new = first_seen.len() as u32;
                            first_seen.push(old as usize);
                        }
                        *new
                    }
                })
                .collect();
            column.codes = codes;
            let mut old_levels: Vec<Option<String>> = column.levels.drain(..).map(Some).collect();
            column.levels = (first_seen.iter())
                .filter_map(|&old| old_levels[old].take())
                .collect();
            column.lookup = (column.levels.iter().enumerate())
                .map(|(code, level)| (level.clone(), code as u32))
                .collect();
        }
    }

    /// Closed deals read.
    pub fn len(&self) -> usize {
        self.won.len()
    }

    /// The bytes the columns hold (ids, dates, outcomes, values, sort orders, level codes and
    /// names): what the job keeps of the data for as long as it trains.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let rows = self.len();
        let per_row = size_of::<usize>() + size_of::<Option<DateTime<Utc>>>() + size_of::<bool>();
        let numeric: usize = (self.numeric.iter())
            .map(|c| c.values.len() * size_of::<f64>() + c.by_value.len() * size_of::<u32>())
            .sum();
        let categorical: usize = (self.categorical.iter())
            .map(|c| c.codes.len() * size_of::<u32>() + c.levels.iter().map(String::len).sum::<usize>())
            .sum();
        self.ids.len() + rows * per_row + numeric + categorical
    }

    /// True when no closed deal was read.
    pub fn is_empty(&self) -> bool {
        self.won.is_empty()
    }

    /// True when no closed deal has a value for source `name` (a feature of a CRM export that
    /// leaves the column empty): a model would learn nothing from it but a "(missing)" level.
    /// A source that is not read here counts as empty.
    pub fn source_is_empty(&self, name: &str) -> bool {
        if let Some(column) = self.numeric.iter().find(|c| c.name == name) {
            return column.values.iter().all(|v| v.is_nan());
        }
        match self.categorical.iter().find(|c| c.name == name) {
            Some(column) => column.codes.iter().all(|&c| c == NO_LEVEL),
            None => true,
        }
    }

    /// Open deals seen and skipped.
    pub fn open_ignored(&self) -> usize {
        self.open_ignored
    }

    /// The "now" values were read at.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Outcome per row (won = true).
    pub fn won(&self) -> &[bool] {
        &self.won
    }

    /// Closing time per row.
    pub fn closed_at(&self) -> &[Option<DateTime<Utc>>] {
        &self.closed_at
    }

    /// External id of row `row`.
    pub fn id(&self, row: usize) -> &str {
        let start = if row == 0 { 0 } else { self.id_ends[row - 1] };
        &self.ids[start..self.id_ends[row]]
    }

    fn numeric_column(&self, name: &str) -> Option<&NumericColumn> {
        self.numeric.iter().find(|c| c.name == name)
    }

    fn categorical_column(&self, name: &str) -> Option<&CategoricalColumn> {
        self.categorical.iter().find(|c| c.name == name)
    }

    /// The raw value of numeric source `name` on `row` (`None`: missing, or not read).
    pub fn number(&self, name: &str, row: usize) -> Option<f64> {
        self.numeric_column(name)
            .map(|c| c.values[row])
            .filter(|v| !v.is_nan())
    }

    /// The level text of categorical source `name` on `row` (`None`: empty, or not read).
    pub fn level(&self, name: &str, row: usize) -> Option<&str> {
        let column = self.categorical_column(name)?;
        column.levels.get(column.codes[row] as usize).map(String::as_str)
    }

    /// The rows with a value of numeric source `name`, by ascending value (`f64::total_cmp`),
    /// each with its value; none when the source is not read. Reading a column in this order
    /// gives any subset of its values already sorted.
    pub fn by_value<'a>(&'a self, name: &str) -> impl Iterator<Item = (usize, f64)> + 'a {
        let column = self.numeric_column(name);
        (column.into_iter()).flat_map(|c| c.by_value.iter().map(|&r| (r as usize, c.values[r as usize])))
    }

    /// Categorical source `name` as level codes: its levels' texts, and per row the index of
    /// its level in them (an index past the end: empty); `None` when the source is not read.
    /// Counting by code spares a text comparison per row.
    pub fn level_codes(&self, name: &str) -> Option<(&[String], &[u32])> {
        let column = self.categorical_column(name)?;
        Some((&column.levels, &column.codes))
    }
}

/// A closing time as integers in the same order: seconds since the epoch, then nanoseconds
/// (above a billion within a leap second, which still sorts before the next second).
fn closing_key(closed_at: Option<DateTime<Utc>>) -> Option<(i64, u32)> {
    closed_at.map(|t| (t.timestamp(), t.timestamp_subsec_nanos()))
}

/// An integer ordered as `f64::total_cmp` orders the values: the bits of a negative value have
/// their magnitude flipped, so that larger magnitudes come first below zero.
fn total_order_key(value: f64) -> i64 {
    let bits = value.to_bits() as i64;
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

/// Rows as a membership mask over all rows.
/// Rows are few when this many times their number is still under the rows held: sorting them
/// (k·log k) then costs less than walking a column's value order (every row held, in an order
/// that reads the membership mask at random).
const FEW_ROWS_FACTOR: usize = 16;

/// The values of `rows` in `column`, NaN left out, in ascending total order: the sequence a walk
/// of the column's value order keeps (values equal in total order are the same bits).
fn sorted_values(column: &NumericColumn, rows: &[usize]) -> Vec<f64> {
    let mut values: Vec<f64> = (rows.iter().map(|&r| column.values[r]))
        .filter(|v| !v.is_nan())
        .collect();
    values.sort_unstable_by(f64::total_cmp);
    values
}

fn mask(n: usize, rows: &[usize]) -> Vec<bool> {
    let mut member = vec![false; n];
    for &r in rows {
        member[r] = true;
    }
    member
}

/// Learns every feature's encoder from `rows` (ascending row indices): the same encoders
/// [`FittedFeatures::fit`] learns from those deals.
pub fn fit_features(spec: &FeatureSpec, data: &CompactDeals, rows: &[usize]) -> FittedFeatures {
    // A few rows of many (a cross-validation fold of a sample) are sorted apart; otherwise each
    // column is walked in value order, keeping the member rows.
    let few = rows.len().saturating_mul(FEW_ROWS_FACTOR) < data.len();
    let member = if few { Vec::new() } else { mask(data.len(), rows) };
    FittedFeatures::from_encoders(spec, |def| {
        let name = def.name();
        match def.kind() {
            Kind::Numeric => {
                // Sorted values of the member rows, as fit_numeric's sort leaves them.
                let values: Vec<f64> = data
                    .numeric_column(name)
                    .map(|c| {
                        if few {
                            sorted_values(c, rows)
                        } else {
                            c.by_value
                                .iter()
                                .filter(|&&r| member[r as usize])
                                .map(|&r| c.values[r as usize])
                                .collect()
                        }
                    })
                    .unwrap_or_default();
                numeric_encoder(def, &values, rows.len())
            }
            Kind::Categorical => {
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                if let Some(column) = data.categorical_column(name) {
                    let mut per_code = vec![0usize; column.levels.len()];
                    let mut empty = 0usize;
                    for &r in rows {
                        match column.codes[r] {
                            NO_LEVEL => empty += 1,
                            code => per_code[code as usize] += 1,
                        }
                    }
                    for (level, &count) in column.levels.iter().zip(&per_code) {
                        if count > 0 {
                            *counts.entry(level.clone()).or_default() += count;
                        }
                    }
                    if empty > 0 {
                        *counts.entry(MISSING_LEVEL.to_owned()).or_default() += empty;
                    }
                } else if !rows.is_empty() {
                    counts.insert(MISSING_LEVEL.to_owned(), rows.len());
                }
                categorical_encoder(def, counts)
            }
        }
    })
}

/// One fitted feature's code for any row: `observe` + `encode_*` on the compact values.
enum FeatureCodes<'a> {
    Numeric {
        feature: &'a FittedFeature,
        encoder: &'a NumericEncoder,
        values: Option<&'a [f64]>,
    },
    Categorical {
        /// Code per level code, then the code of an empty field.
        table: Vec<FeatureCode>,
        codes: Option<&'a [u32]>,
    },
}

impl<'a> FeatureCodes<'a> {
    fn new(feature: &'a FittedFeature, data: &'a CompactDeals) -> FeatureCodes<'a> {
        let name = feature.def.name();
        match &feature.encoder {
            Encoder::Numeric(encoder) => FeatureCodes::Numeric {
                feature,
                encoder,
                values: data.numeric_column(name).map(|c| c.values.as_slice()),
            },
            Encoder::Categorical(encoder) => {
                let column = data.categorical_column(name);
                let mut table: Vec<FeatureCode> = column
                    .map(|c| {
                        c.levels
                            .iter()
                            .map(|l| encode_category(encoder, Some(l)))
                            .collect()
                    })
                    .unwrap_or_default();
                table.push(encode_category(encoder, None));
                FeatureCodes::Categorical {
                    table,
                    codes: column.map(|c| c.codes.as_slice()),
                }
            }
        }
    }

    fn code(&self, row: usize) -> FeatureCode {
        match self {
            FeatureCodes::Numeric {
                feature,
                encoder,
                values,
            } => {
                let raw = values.map(|v| v[row]).filter(|v| !v.is_nan());
                encode_numeric(feature, encoder, raw)
            }
            FeatureCodes::Categorical { table, codes } => {
                let empty = table.len() - 1;
                let code = codes.map_or(NO_LEVEL, |c| c[row]);
                let index = if code == NO_LEVEL { empty } else { code as usize };
                table[index.min(empty)]
            }
        }
    }
}

/// The column-major design matrix of `rows` (in that order): the matrix
/// [`super::fit::design_matrix`] builds from those deals.
pub fn design(fitted: &FittedFeatures, data: &CompactDeals, rows: &[usize]) -> Array2<f64> {
    let mut x = Array2::<f64>::zeros((rows.len(), fitted.n_columns).f());
    for feature in &fitted.features {
        let codes = FeatureCodes::new(feature, data);
        for (r, &row) in rows.iter().enumerate() {
            let code = codes.code(row);
            if let Some((c, v)) = code.column {
                x[[r, feature.offset + c]] = v;
            }
            if let Some(c) = code.indicator {
                x[[r, feature.offset + c]] = 1.0;
            }
        }
    }
    x
}

/// Log-odds of `rows` under `features` with `intercept` and `coefficient(column)`, summed as
/// `model::logit` sums them (feature by feature), so a model scores a row here exactly as it
/// scores the deal when serving.
pub fn logits(
    features: &FittedFeatures,
    data: &CompactDeals,
    rows: &[usize],
    intercept: f64,
    coefficient: &dyn Fn(usize) -> f64,
) -> Vec<f64> {
    let mut z = vec![intercept; rows.len()];
    for feature in &features.features {
        let codes = FeatureCodes::new(feature, data);
        for (acc, &row) in z.iter_mut().zip(rows) {
            *acc += feature_share(feature, codes.code(row), coefficient);
        }
    }
    z
}

/// One feature's share of the log-odds: `model::feature_logit`'s sum.
fn feature_share(feature: &FittedFeature, code: FeatureCode, coefficient: &dyn Fn(usize) -> f64) -> f64 {
    let mut sum = 0.0;
    if let Some((c, v)) = code.column {
        sum += coefficient(feature.offset + c) * v;
    }
    if let Some(c) = code.indicator {
        sum += coefficient(feature.offset + c);
    }
    sum
}

/// Each row's share of the log-odds from `feature`, for every row in order.
pub fn feature_shares(feature: &FittedFeature, data: &CompactDeals, weights: &[f64]) -> Vec<f64> {
    let codes = FeatureCodes::new(feature, data);
    let coefficient = |i: usize| weights.get(i).copied().unwrap_or(0.0);
    (0..data.len())
        .map(|row| feature_share(feature, codes.code(row), &coefficient))
        .collect()
}

/// The drift profile of every feature over all rows: what [`TrainingProfile::compute`] gives
/// on the deals.
pub fn profile(features: &FittedFeatures, data: &CompactDeals) -> TrainingProfile {
    let n = data.len();
    let profiles = features
        .features
        .iter()
        .map(|feature| {
            let name = feature.def.name();
            let (bins, counts) = match &feature.encoder {
                Encoder::Numeric(_) => {
                    let column = data.numeric_column(name);
                    let values: Vec<f64> = column
                        .map(|c| c.by_value.iter().map(|&r| c.values[r as usize]).collect())
                        .unwrap_or_default();
                    let edges = quantile_edges(&values, PROFILE_BINS);
                    let mut counts = vec![0usize; edges.len() + 2];
                    for row in 0..n {
                        let bin = match column.map(|c| c.values[row]).filter(|v| !v.is_nan()) {
                            Some(x) => edges.partition_point(|e| *e <= x),
                            None => edges.len() + 1,
                        };
                        counts[bin] += 1;
                    }
                    (ProfileBins::Numeric { edges }, counts)
                }
                Encoder::Categorical(encoder) => {
                    let levels: Vec<String> = encoder
                        .levels
                        .iter()
                        .filter(|l| l.as_str() != MISSING_LEVEL && l.as_str() != OTHER_LEVEL)
                        .cloned()
                        .collect();
                    let mut counts = vec![0usize; levels.len() + 2];
                    let column = data.categorical_column(name);
                    // Bin per level code, then the empty field's bin.
                    let mut table: Vec<usize> = column
                        .map(|c| {
                            c.levels
                                .iter()
                                .map(|l| levels.iter().position(|k| k == l).unwrap_or(levels.len()))
                                .collect()
                        })
                        .unwrap_or_default();
                    table.push(levels.len() + 1);
                    let empty = table.len() - 1;
                    for row in 0..n {
                        let code = column.map_or(NO_LEVEL, |c| c.codes[row]);
                        let index = if code == NO_LEVEL { empty } else { code as usize };
                        counts[table[index.min(empty)]] += 1;
                    }
                    (ProfileBins::Categorical { levels }, counts)
                }
            };
            let labels = crate::model::profile::labels(&bins);
            FeatureProfile {
                feature: name.to_owned(),
                bins,
                labels,
                counts,
            }
        })
        .collect();
    TrainingProfile {
        rows: n,
        features: profiles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::encode::observe;
    use crate::generate::{generate, GeneratorConfig};

    /// A spec with every encoding: bins, linear, log, categorical with rare levels, numeric and
    /// text attributes (the generator's attributes) and a core field read as a category.
    fn every_encoding() -> FeatureSpec {
        FeatureSpec::from_toml(
            r#"
[[feature]]
name = "cycle_days"
bins = 8
[[feature]]
name = "response_hours"
transform = "log"
[[feature]]
name = "amount"
transform = "linear"
[[feature]]
name = "interaction_count"
bins = 5
[[feature]]
name = "sector"
min_count = 50
[[feature]]
name = "contact_role"
min_count = 1
[[feature]]
name = "owner"
min_count = 30
[[feature]]
name = "region"
min_count = 20
"#,
        )
        .unwrap()
    }

    fn deals() -> (Vec<Opportunity>, DateTime<Utc>) {
        let config = GeneratorConfig {
            deals: 3_000,
            seed: 5,
            with_activities: false,
            ..GeneratorConfig::default()
        };
        let mut history = generate(&config);
        // Empty fields and a literal "(missing)" level, which must stay apart from an empty one.
        for (i, d) in history.opportunities.iter_mut().enumerate() {
            if i % 11 == 0 {
                d.response_hours = None;
            }
            if i % 13 == 0 {
                d.sector = None;
            }
            if i % 17 == 0 {
                d.region = Some(MISSING_LEVEL.to_owned());
            }
            if i % 19 == 0 {
                d.amount = None;
            }
        }
        (history.opportunities, config.end)
    }

    #[test]
    fn the_total_order_key_orders_values_as_total_cmp_does() {
        let values = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -1.0,
            -5e-324,
            -0.0,
            0.0,
            5e-324,
            1.0,
            2.5,
            1e300,
            f64::INFINITY,
        ];
        for a in values {
            for b in values {
                assert_eq!(
                    total_order_key(a).cmp(&total_order_key(b)),
                    a.total_cmp(&b),
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn the_closing_key_orders_closing_times_as_they_order() {
        let t = |text: &str| Some(crate::domain::parse_timestamp(text).unwrap());
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_500))
            .map(|n| n.and_utc());
        let times = [
            None,
            t("1900-01-01T00:00:00Z"),
            t("1969-12-31T23:59:59.999Z"),
            t("1970-01-01T00:00:00Z"),
            t("2016-12-31T23:59:59.900Z"),
            leap,
            t("2017-01-01T00:00:00Z"),
            t("2025-03-01T10:00:00.000000001Z"),
            t("9999-12-31T23:59:59Z"),
        ];
        for a in times {
            for b in times {
                assert_eq!(closing_key(a).cmp(&closing_key(b)), a.cmp(&b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn rows_put_in_closing_order_equal_rows_pushed_in_it() {
        let (deals, now) = deals();
        let sources = sources_for(&[&every_encoding()]);
        // Each deal pushed one to three times, as its snapshots are, with its amount changed per
        // snapshot so that their order shows.
        let snapshots = |deal: &Opportunity| -> Vec<Opportunity> {
            let n = 1 + usize::from(deal.external_id.as_str().bytes().last().unwrap_or(0) % 3);
            (0..n)
                .map(|k| {
                    let mut shot = deal.clone();
                    shot.amount = deal.amount.map(|a| a + k as f64);
                    shot
                })
                .collect()
        };
        let mut in_order: Vec<&Opportunity> = deals.iter().collect();
        in_order.sort_by(|a, b| (a.closed_at, &a.external_id).cmp(&(b.closed_at, &b.external_id)));
        let mut expected = CompactDeals::new(&sources, now);
        for deal in &in_order {
            snapshots(deal).iter().for_each(|shot| expected.push(shot));
        }
        expected.finish();
        // The same deals in another order (reversed, then every third one moved to the end).
        let reversed: Vec<&Opportunity> = deals.iter().rev().collect();
        let (third, rest): (Vec<_>, Vec<_>) = reversed.iter().enumerate().partition(|(i, _)| i % 3 == 0);
        let shuffled: Vec<&Opportunity> = rest.into_iter().chain(third).map(|(_, d)| *d).collect();
        let mut arranged = CompactDeals::new(&sources, now);
        for deal in &shuffled {
            snapshots(deal).iter().for_each(|shot| arranged.push(shot));
        }
        assert_ne!(format!("{arranged:?}"), format!("{expected:?}"));
        arranged.finish_in_closing_order();
        // Every column, code and level order alike (the lookups are emptied by `finish`).
        assert_eq!(format!("{arranged:?}"), format!("{expected:?}"));
        assert!(expected.len() > deals.iter().filter(|d| d.status.is_closed()).count());
    }

    #[test]
    fn encoders_matrices_scores_and_profile_equal_those_built_from_the_deals() {
        let (deals, now) = deals();
        let spec = every_encoding();
        let data = CompactDeals::from_deals(&deals, &sources_for(&[&spec]), now);
        let closed: Vec<&Opportunity> = deals.iter().filter(|d| d.status.is_closed()).collect();
        assert_eq!(data.len(), closed.len());
        assert_eq!(data.open_ignored(), deals.len() - closed.len());
        for (row, d) in closed.iter().enumerate() {
            assert_eq!(data.id(row), d.external_id.as_str());
        }
        // A subset in ascending order, as the folds and the split hand them over.
        let rows: Vec<usize> = (0..closed.len()).filter(|r| r % 3 != 1).collect();
        let subset: Vec<&Opportunity> = rows.iter().map(|&r| closed[r]).collect();
        let expected = FittedFeatures::fit(&spec, &subset, now);
        let fitted = fit_features(&spec, &data, &rows);
        assert_eq!(fitted, expected);
        // A few rows of many (sorted apart rather than walked in value order) fit the same.
        let few: Vec<usize> = (0..closed.len()).step_by(FEW_ROWS_FACTOR + 1).collect();
        assert!(few.len() * FEW_ROWS_FACTOR < data.len() && few.len() > 20);
        let few_deals: Vec<&Opportunity> = few.iter().map(|&r| closed[r]).collect();
        assert_eq!(
            fit_features(&spec, &data, &few),
            FittedFeatures::fit(&spec, &few_deals, now)
        );

        let x = design(&fitted, &data, &rows);
        assert_eq!(x, super::super::fit::design_matrix(&expected, &subset, now));

        // Scores equal serving's, bit for bit.
        let weights: Vec<f64> = (0..fitted.n_columns).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut artifact = crate::training::fixtures::trained_on_generated(600, 1).0;
        artifact.features = expected.clone();
        artifact.intercept = -0.3;
        artifact.coefficients = expected
            .column_names()
            .into_iter()
            .zip(&weights)
            .map(|(column, w)| crate::model::ColumnCoefficient {
                column,
                feature: String::new(),
                coefficient: *w,
            })
            .collect();
        let all: Vec<usize> = (0..closed.len()).collect();
        let z = logits(&fitted, &data, &all, -0.3, &|i| artifact.coefficient(i));
        for (row, d) in closed.iter().enumerate() {
            assert_eq!(
                z[row],
                crate::model::predict::logit(&artifact, d, now),
                "row {row}"
            );
        }
        let shares = feature_shares(&fitted.features[4], &data, &weights);
        for (row, d) in closed.iter().enumerate() {
            let code = observe(&fitted.features[4], d, now).code;
            assert_eq!(
                shares[row],
                feature_share(&fitted.features[4], code, &|i| weights[i])
            );
        }

        let all_fitted = fit_features(&spec, &data, &all);
        assert_eq!(
            profile(&all_fitted, &data),
            TrainingProfile::compute(&all_fitted, &closed, now)
        );
    }

    #[test]
    fn sources_cover_both_specs_once_and_the_success_factor_breakdowns() {
        let spec = FeatureSpec::default_spec();
        let other = every_encoding();
        let sources = sources_for(&[&spec, &other]);
        let names: Vec<&str> = sources.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"owner") && names.contains(&"sector") && names.contains(&"contact_role"));
        let mut unique = sources.clone();
        unique.dedup();
        assert_eq!(unique.len(), sources.len());
        assert_eq!(sources.iter().filter(|(n, _)| n == "sector").count(), 1);
    }

    #[test]
    fn columns_say_whether_they_read_an_attribute() {
        let now = Utc::now();
        let core = FeatureSpec::default_spec();
        assert!(!CompactDeals::new(&sources_for(&[&core]), now).reads_attributes());
        let with_tier =
            FeatureSpec::from_toml("[[feature]]\nname = \"attr.tier\"\nkind = \"categorical\"\n").unwrap();
        assert!(CompactDeals::new(&sources_for(&[&core, &with_tier]), now).reads_attributes());
    }
}
