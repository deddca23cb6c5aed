//! Training snapshots from the database: each closed deal with its recorded history and
//! activities, expanded into the states it went through while open (`training::snapshots`).
//!
//! Reading and expanding are separate steps ([`read_timelines`], [`expand_timelines`]) so that
//! the job can read the next page of deals while a CPU thread expands the last one.

use std::collections::{BTreeSet, HashMap};

use crate::domain::Opportunity;
use crate::features::as_of::AsOfRules;
use crate::store::{history, opportunities, Db};
use crate::training::snapshots::{snapshots, SnapshotPlan};

/// Deals whose recorded changes and activities are read per call of [`history::recorded`] (a
/// statement for the changes and one for the activities per 400 deals, on two connections).
const TIMELINES_PER_READ: usize = 1_000;

/// What [`expand`] produced.
#[derive(Debug, Default)]
pub struct Expanded {
    /// The snapshots of each closed deal, deal after deal.
    pub rows: Vec<Opportunity>,
    /// Closed deals with a recorded field history or activities.
    pub with_history: usize,
    /// Closed deals expanded.
    pub deals: usize,
}

/// What [`expand_timelines`] counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpandCounts {
    /// Closed deals with a recorded field history or activities before their close.
    pub with_history: usize,
    /// Closed deals expanded.
    pub deals: usize,
}

/// Closed deals with their recorded changes and activities, read and not yet expanded.
#[derive(Debug, Default)]
pub struct Timelines {
    /// The closed deals, in the order read, with their row ids (`None`: not stored).
    pub deals: Vec<(Option<i64>, Opportunity)>,
    /// Their recorded changes and activities, by row id (deals with neither are absent).
    recorded: HashMap<i64, history::Recorded>,
}

/// Expands every closed deal of `deals` into the snapshots of its open life `plan` asks for,
/// read with its recorded history and activities; open deals are left out (no outcome yet).
pub async fn expand(db: &Db, deals: &[Opportunity], plan: &SnapshotPlan) -> Result<Expanded, sqlx::Error> {
    let mut rows = Vec::new();
    let mut counts = ExpandCounts::default();
    let rules = AsOfRules::default();
    let closed: Vec<&Opportunity> = deals.iter().filter(|d| d.status.is_closed()).collect();
    let external_ids: Vec<&str> = closed.iter().map(|d| d.external_id.as_str()).collect();
    let ids = opportunities::ids_of(db, &external_ids).await?;
    let keyed = (closed.into_iter())
        .map(|d| (ids.get(d.external_id.as_str()).copied(), d.clone()))
        .collect();
    let timelines = read_timelines(db, keyed, None).await?;
    expand_timelines(timelines, (plan, &rules), &mut counts, |row| rows.push(row));
    Ok(Expanded {
        rows,
        with_history: counts.with_history,
        deals: counts.deals,
    })
}

/// Reads the recorded changes and activities of `deals` (closed deals, each with its row id;
/// `None` for one not stored, which has neither), [`TIMELINES_PER_READ`] deals per round trip;
/// with `fields_read`, the changes of those fields only (see [`history::recorded`]), for a reader
/// of those fields of the snapshots.
pub async fn read_timelines(
    db: &Db,
    deals: Vec<(Option<i64>, Opportunity)>,
    fields_read: Option<&BTreeSet<String>>,
) -> Result<Timelines, sqlx::Error> {
    // Two halves at once: each read waits on its statements' threads and on the parse of their
    // answers in turn, and two keep more of the machine busy than one.
    let ids: Vec<i64> = deals.iter().filter_map(|(id, _)| *id).collect();
    let (first, second) = ids.split_at(ids.len().div_ceil(2));
    let (first, second) = tokio::join!(
        recorded_in_chunks(db, first, fields_read),
        recorded_in_chunks(db, second, fields_read)
    );
    let mut recorded = first?;
    recorded.extend(second?);
    Ok(Timelines { deals, recorded })
}

/// [`history::recorded`] of the deals with these row ids, [`TIMELINES_PER_READ`] deals per call.
async fn recorded_in_chunks(
    db: &Db,
    ids: &[i64],
    fields_read: Option<&BTreeSet<String>>,
) -> Result<HashMap<i64, history::Recorded>, sqlx::Error> {
    let mut recorded = HashMap::new();
    for chunk in ids.chunks(TIMELINES_PER_READ) {
        recorded.extend(history::recorded(db, chunk, fields_read).await?);
    }
    Ok(recorded)
}

/// Expands each deal of `timelines` into the snapshots `plan` asks for, handing each to `each`,
/// deal after deal, for a reader that keeps less than every snapshot whole (training reads them
/// into compact columns); adds to `counts`. Timelines read for some fields only
/// ([`read_timelines`] with `fields_read`) give snapshots whose other fields keep their current
/// values: a reader of those fields only ([`crate::training::CompactDeals::fields_read`]) reads
/// the same, and each snapshot visits fewer fields. CPU work only.
pub fn expand_timelines(
    timelines: Timelines,
    (plan, rules): (&SnapshotPlan, &AsOfRules),
    counts: &mut ExpandCounts,
    mut each: impl FnMut(Opportunity),
) {
    let Timelines { deals, mut recorded } = timelines;
    for (id, deal) in deals.iter().filter(|(_, d)| d.status.is_closed()) {
        let history::Recorded {
            history: changes,
            activities,
            unread_since,
        } = id.and_then(|id| recorded.remove(&id)).unwrap_or_default();
        // A first write at the close is no history of the open life.
        let before_close = |at| deal.closed_at.is_none_or(|c| at < c);
        if changes.iter().any(|c| before_close(c.changed_at))
            || activities.iter().any(|a| before_close(a.occurred_at))
            || unread_since.is_some_and(before_close)
        {
            counts.with_history += 1;
        }
        snapshots(deal, &changes, &activities, plan, rules)
            .into_iter()
            .for_each(&mut each);
        counts.deals += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::history::tracked_values;
    use crate::domain::{ChangeSource, FieldChange, Previous, Touching};
    use crate::features::raw::{category_value, numeric_value};
    use crate::features::{FeatureSpec, Source};
    use crate::generate::{generate, GeneratorConfig};
    use crate::training::compact::sources_for;
    use crate::training::snapshots::DEFAULT_AGES;
    use crate::training::CompactDeals;
    use serde_json::json;

    /// Generated closed deals with their activities, and a recorded history
    /// that changes every kind of field while they were open: the first write at creation, then
    /// a stage, a name, an attribute no feature reads, and a sector and an amount, which
    /// features read.
    fn timelines() -> Timelines {
        let generated = generate(&GeneratorConfig {
            deals: 300,
            seed: 5,
            with_activities: true,
            ..GeneratorConfig::default()
        });
        let deals: Vec<Opportunity> = generated
            .opportunities
            .into_iter()
            .filter(|d| d.status.is_closed())
            .collect();
        // Row ids as a store would give them.
        let ids: HashMap<String, i64> = (deals.iter().zip(1..))
            .map(|(d, id)| (d.external_id.to_string(), id))
            .collect();
        let mut recorded: HashMap<i64, history::Recorded> = HashMap::new();
        for (external_id, activity) in generated.activities {
            if let Some(id) = ids.get(&external_id) {
                recorded.entry(*id).or_default().activities.push(activity.touch());
            }
        }
        for deal in &deals {
            let (Some(created), Some(closed)) = (deal.created_at, deal.closed_at) else {
                continue;
            };
            let midway = created + (closed - created) / 2;
            let change = |field: &str, value: serde_json::Value, at| FieldChange {
                field: field.to_owned(),
                value: Some(value),
                previous: Previous::Unknown,
                changed_at: at,
                source: ChangeSource::Api,
            };
            let id = ids[deal.external_id.as_str()];
            let history = &mut recorded.entry(id).or_default().history;
            history.extend(
                tracked_values(&deal.deal)
                    .into_iter()
                    .map(|(field, value)| change(&field, value, created)),
            );
            history.push(change("stage", json!("proposal"), midway));
            history.push(change("name", json!("renamed"), midway));
            history.push(change("attributes.unread", json!("x"), midway));
            history.push(change("sector", json!("energy"), midway));
            history.push(change("amount", json!(1234.5), midway));
        }
        let deals = (deals.into_iter())
            .map(|d| (ids.get(d.external_id.as_str()).copied(), d))
            .collect();
        Timelines { deals, recorded }
    }

    /// The snapshots of [`timelines`], with the changes of the fields `fields_read` holds only
    /// when given (what [`read_timelines`] reads for them).
    fn expanded(fields_read: Option<&BTreeSet<String>>) -> Vec<Opportunity> {
        let (plan, rules) = (SnapshotPlan::Ages(DEFAULT_AGES.to_vec()), AsOfRules::default());
        let mut timelines = timelines();
        if let Some(read) = fields_read {
            for recorded in timelines.recorded.values_mut() {
                recorded.history.retain(|c| read.contains(c.field.as_str()));
            }
        }
        let mut rows = Vec::new();
        let mut counts = ExpandCounts::default();
        expand_timelines(timelines, (&plan, &rules), &mut counts, |row| rows.push(row));
        rows
    }

    #[test]
    fn snapshots_without_the_changes_of_unread_fields_read_the_same() {
        let spec = FeatureSpec::default_spec().for_snapshots();
        let sources = sources_for(&[&spec]);
        let now = crate::domain::parse_timestamp("2030-01-01T00:00:00Z").unwrap();
        let fields_read = CompactDeals::new(&sources, now).fields_read();
        assert!(fields_read.contains("sector") && fields_read.contains("created_at"));
        assert!(!fields_read.contains("stage") && !fields_read.contains("name"));

        let (whole, lean) = (expanded(None), expanded(Some(&fields_read)));
        assert!(whole.len() > 500, "{}", whole.len());
        assert_eq!(whole.len(), lean.len());
        let mut differ = 0;
        for (w, l) in whole.iter().zip(&lean) {
            assert_eq!(w.external_id, l.external_id);
            assert_eq!(
                (w.status, w.closed_at, w.cycle_days),
                (l.status, l.closed_at, l.cycle_days)
            );
            for (name, _) in &sources {
                let source = Source::of(name);
                assert_eq!(
                    format!("{:?}", numeric_value(&source, w, now)),
                    format!("{:?}", numeric_value(&source, l, now)),
                    "{name} of {}",
                    w.external_id
                );
                assert_eq!(category_value(&source, w), category_value(&source, l), "{name}");
            }
            // The unread fields are what was left out.
            if w.stage != l.stage || w.name != l.name || w.attributes != l.attributes {
                differ += 1;
            }
        }
        assert!(differ > 100, "{differ}");
    }
}
