//! The in-memory snapshot every insight is computed from (kept, keyed by the database's change
//! stamp, by [`super::cache`]).
//!
//! Loading 1,000,000 opportunities through sqlx takes seconds, and medians are not SQL on
//! SQLite, so the insights load the few columns they need once into compact rows (categories
//! interned as numbers) and aggregate in Rust, in milliseconds.

use std::collections::HashMap;

use crate::domain::Status;
use crate::store::insights::DealRow;

/// Index of a category name in [`Names`].
pub type NameId = u32;

/// Interned category names (accounts, sectors, regions, owners, roles, currencies).
#[derive(Debug, Default)]
pub struct Names {
    names: Vec<String>,
    index: HashMap<String, NameId>,
}

impl Names {
    /// The id of `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> NameId {
        if let Some(id) = self.index.get(name) {
            return *id;
        }
        let id = NameId::try_from(self.names.len()).unwrap_or(NameId::MAX);
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        id
    }

    /// The id of `name`, if any deal uses it.
    pub fn find(&self, name: &str) -> Option<NameId> {
        self.index.get(name).copied()
    }

    /// The name of an id.
    pub fn name(&self, id: NameId) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }

    /// How many names are interned.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no name is interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A value per optional category for the per-deal grouping loops: finding a deal's group is
/// an index into a vector by name id instead of hashing its key. The values themselves are kept
/// densely, so a map keyed by owner costs a few bytes per interned name (accounts included),
/// not one value per name.
#[derive(Debug, Clone)]
pub struct ByName<T> {
    /// Per slot (0 for "no value", id + 1 for a name): the position of its value, or `ABSENT`.
    index: Vec<usize>,
    /// The values, in the order their keys first came.
    values: Vec<(Option<NameId>, T)>,
}

const ABSENT: usize = usize::MAX;

impl<T> ByName<T> {
    /// Empty, indexed for every name of `names` (later names still find a slot).
    pub fn new(names: &Names) -> Self {
        ByName {
            index: vec![ABSENT; names.len() + 1],
            values: Vec::new(),
        }
    }

    fn slot(key: Option<NameId>) -> usize {
        key.map_or(0, |id| id as usize + 1)
    }

    /// The value of `key`, made by `make` when absent.
    pub fn entry(&mut self, key: Option<NameId>, make: impl FnOnce() -> T) -> &mut T {
        let slot = Self::slot(key);
        if slot >= self.index.len() {
            self.index.resize(slot + 1, ABSENT);
        }
        if self.index[slot] == ABSENT {
            self.index[slot] = self.values.len();
            self.values.push((key, make()));
        }
        &mut self.values[self.index[slot]].1
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: Option<NameId>) -> Option<&T> {
        let at = *self.index.get(Self::slot(key))?;
        self.values.get(at).map(|(_, v)| v)
    }

    /// The keys that have a value, with it, in the order they first came.
    pub fn into_entries(self) -> impl Iterator<Item = (Option<NameId>, T)> {
        self.values.into_iter()
    }

    /// Like [`ByName::into_entries`], borrowing.
    pub fn entries(&self) -> impl Iterator<Item = (Option<NameId>, &T)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }
}

/// A set of name ids as a bit per id (distinct accounts per group: a bit set per group is a
/// few hundred bytes where a hash set costs a hash per deal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameSet {
    words: Vec<u64>,
    len: usize,
}

impl NameSet {
    /// Adds `id`.
    pub fn insert(&mut self, id: NameId) {
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        if self.words[word] & bit == 0 {
            self.words[word] |= bit;
            self.len += 1;
        }
    }

    /// Adds `id` when present.
    pub fn extend(&mut self, id: Option<NameId>) {
        if let Some(id) = id {
            self.insert(id);
        }
    }

    /// Distinct ids added.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One opportunity, compact: names interned, times in epoch milliseconds.
#[derive(Debug, Clone)]
pub struct Deal {
    /// Internal id.
    pub id: i64,
    /// CRM id.
    pub external_id: Box<str>,
    /// Account.
    pub account: Option<NameId>,
    /// Sector.
    pub sector: Option<NameId>,
    /// Region.
    pub region: Option<NameId>,
    /// Owner.
    pub owner: Option<NameId>,
    /// Contact role.
    pub contact_role: Option<NameId>,
    /// Currency.
    pub currency: NameId,
    /// Amount.
    pub amount: Option<f64>,
    /// Status.
    pub status: Status,
    /// Creation.
    pub created_at: Option<i64>,
    /// Close.
    pub closed_at: Option<i64>,
    /// Interaction count.
    pub interaction_count: Option<i64>,
    /// Response time in hours.
    pub response_hours: Option<f64>,
    /// Last activity.
    pub last_activity_at: Option<i64>,
    /// Win probability of the latest stored score (open deals only).
    pub probability: Option<f64>,
}

/// Milliseconds per day.
pub const DAY_MS: i64 = 86_400_000;

impl Deal {
    /// `closed_at − created_at` in days for a closed deal with both dates.
    pub fn cycle_days(&self) -> Option<f64> {
        match (self.status, self.created_at, self.closed_at) {
            (Status::Won | Status::Lost, Some(c), Some(e)) => Some(((e - c) as f64 / DAY_MS as f64).max(0.0)),
            _ => None,
        }
    }

    /// True when the deal was open at `at`: created before it (or creation unknown) and either
    /// still open or closed at or after it.
    pub fn open_at(&self, at: i64) -> bool {
        if self.created_at.is_some_and(|c| c >= at) {
            return false;
        }
        match self.status {
            Status::Open => true,
            Status::Won | Status::Lost => self.closed_at.is_some_and(|e| e >= at),
        }
    }

    /// True when the deal closed (won or lost) within `[start, end)`.
    pub fn closed_within(&self, start: i64, end: i64) -> bool {
        self.status.is_closed() && self.closed_at.is_some_and(|e| e >= start && e < end)
    }
}

/// Every opportunity of the database at one change stamp.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The change stamp the rows are at least as new as.
    pub stamp: i64,
    /// The deals, in id order.
    pub deals: Vec<Deal>,
    /// Interned names.
    pub names: Names,
    /// When it was loaded (`None` for snapshots built in tests).
    pub loaded_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Snapshot {
    /// Builds a snapshot from rows (the loader, and unit tests).
    pub fn from_rows(
        stamp: i64,
        rows: impl IntoIterator<Item = DealRow>,
        probabilities: &HashMap<i64, f64>,
    ) -> Self {
        let mut snapshot = Snapshot {
            stamp,
            ..Snapshot::default()
        };
        for row in rows {
            snapshot.push(row, probabilities);
        }
        snapshot
    }

    /// Adds one deal (the loader, row by row).
    pub(crate) fn push(&mut self, row: DealRow, probabilities: &HashMap<i64, f64>) {
        let names = &mut self.names;
        let mut intern = |v: Option<String>| v.filter(|s| !s.is_empty()).map(|s| names.intern(&s));
        let account = intern(row.account);
        let sector = intern(row.sector);
        let region = intern(row.region);
        let owner = intern(row.owner);
        let contact_role = intern(row.contact_role);
        let currency = self.names.intern(&row.currency);
        self.deals.push(Deal {
            id: row.id,
            external_id: row.external_id.into_boxed_str(),
            account,
            sector,
            region,
            owner,
            contact_role,
            currency,
            amount: row.amount,
            status: row.status,
            created_at: row.created_at,
            closed_at: row.closed_at,
            interaction_count: row.interaction_count,
            response_hours: row.response_hours,
            last_activity_at: row.last_activity_at,
            probability: (row.status == Status::Open)
                .then(|| probabilities.get(&row.id).copied())
                .flatten(),
        });
    }

    /// The display name of an optional category (`(none)` when absent).
    pub fn label(&self, id: Option<NameId>) -> String {
        id.map_or_else(|| NONE_LABEL.to_owned(), |i| self.names.name(i).to_owned())
    }
}

/// Label of the group of deals without a value for the grouping field.
pub const NONE_LABEL: &str = "(none)";

/// A random but reproducible snapshot for the unit tests of the insights: every optional field
/// sometimes missing, a rare sector (below the at-risk group minimum), repeated amounts (ties in
/// rankings), several currencies, external ids not in id order, half the open deals scored; lost
/// deals answered slower and lasted longer than won ones, the interaction count unrelated.
#[cfg(test)]
pub(crate) fn sample(deals: usize, seed: u64) -> Snapshot {
    let mut state = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n.max(1)
    };
    let pick = |r: u64, names: &[&str]| -> Option<String> {
        let i = r as usize;
        (i < names.len()).then(|| names[i].to_owned())
    };
    let start = 1_700_000_000_000_i64;
    let mut rows = Vec::new();
    let mut probabilities = HashMap::new();
    for id in 1..=deals as i64 {
        let status = match next(10) {
            0..=2 => Status::Open,
            3..=5 => Status::Won,
            _ => Status::Lost,
        };
        let created_at =
            (next(20) > 0).then(|| start + next(700) as i64 * DAY_MS + next(DAY_MS as u64) as i64);
        let closed_at = match (status, created_at) {
            (Status::Open, _) => None,
            // Lost deals drag on longer (at-risk needs a measure that separates).
            (_, Some(c)) => (next(15) > 0).then(|| {
                let days = next(200) as i64 * if status == Status::Lost { 3 } else { 2 } / 2;
                c + days * DAY_MS + next(1000) as i64
            }),
            (_, None) => (next(2) == 0).then(|| start + next(800) as i64 * DAY_MS),
        };
        // A rare sector ("mining") stays below the at-risk minimum of won deals.
        let sector = if next(200) == 0 {
            Some("mining".to_owned())
        } else {
            pick(
                next(7),
                &["retail", "banking", "energy", "health", "public", "telecom"],
            )
        };
        if status == Status::Open && next(2) == 0 {
            probabilities.insert(id, next(1000) as f64 / 1000.0);
        }
        rows.push(DealRow {
            id,
            external_id: format!("E{:03}-{id}", next(1000)),
            account: (next(20) > 0).then(|| format!("acct{}", next(40))),
            sector,
            region: pick(next(5), &["EMEA", "NA", "APAC", "LATAM"]),
            owner: pick(next(8), &["ann", "bob", "cy", "dee", "ed", "flo", "gus"]),
            contact_role: pick(next(5), &["buyer", "champion", "user", "(none)"]),
            amount: (next(10) > 0).then(|| (1 + next(40)) as f64 * 500.0 + [0.0, 0.25][next(2) as usize]),
            currency: ["EUR", "USD", "GBP"][next(3) as usize].to_owned(),
            status,
            created_at,
            closed_at,
            interaction_count: (next(10) > 0).then(|| next(30) as i64),
            // Lost deals were answered slower.
            response_hours: (next(10) > 0)
                .then(|| next(2000) as f64 / 10.0 * if status == Status::Lost { 1.4 } else { 1.0 }),
            last_activity_at: (next(3) > 0).then(|| start + next(800) as i64 * DAY_MS),
        });
    }
    Snapshot::from_rows(42, rows, &probabilities)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_name_indexes_every_key_and_none() {
        let mut names = Names::default();
        let a = names.intern("a");
        let b = names.intern("b");
        let mut by = ByName::new(&names);
        *by.entry(Some(b), || 0) += 2;
        *by.entry(None, || 0) += 1;
        *by.entry(Some(b), || 0) += 3;
        // An id interned after the map was made still finds a slot.
        *by.entry(Some(7), || 0) += 4;
        assert_eq!(by.get(Some(a)), None);
        assert_eq!(by.get(Some(b)), Some(&5));
        assert_eq!(
            by.entries().collect::<Vec<_>>(),
            vec![(Some(b), &5), (None, &1), (Some(7), &4)],
            "in the order the keys first came"
        );
        assert_eq!(by.get(Some(1_000)), None);
        assert_eq!(by.into_entries().count(), 3);
    }

    #[test]
    fn name_set_counts_distinct_ids() {
        let mut set = NameSet::default();
        assert!(set.is_empty());
        for id in [3, 64, 3, 200, 64, 0] {
            set.insert(id);
        }
        set.extend(None);
        set.extend(Some(0));
        assert_eq!(set.len(), 4);
    }
}
