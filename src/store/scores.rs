//! The `scores` table: the score history of stored opportunities.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, FromRow, Row, Transaction};

use std::collections::HashMap;
use std::sync::LazyLock;

use super::opportunities::{self, OpportunityRow, StoredOpportunity};
use super::sql::{select_by_keys, values_placeholders, OptionalF64, Style};
use super::Db;
use crate::domain::{from_epoch_ms, to_epoch_ms};

/// One stored score.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StoredScore {
    /// Model version.
    pub model_version: String,
    /// Win probability.
    pub probability: f64,
    /// 0–100.
    pub score: i64,
    /// A–D.
    pub grade: String,
    /// probability × amount.
    pub expected_value: Option<f64>,
    /// Focus.
    pub focus: String,
    /// When.
    pub scored_at: DateTime<Utc>,
}

/// A score to record for an opportunity (by internal id).
#[derive(Debug, Clone)]
pub struct NewScore {
    /// Internal opportunity id.
    pub opportunity_id: i64,
    /// What to store.
    pub score: StoredScore,
    /// Hash of the deal as scored ([`super::opportunities::content_hash`] of the stored
    /// opportunity), so a later read can tell whether the deal changed since; none when unknown.
    pub deal_hash: Option<String>,
}

impl NewScore {
    /// The same row, marked as computed from the deal whose hash is `deal_hash`.
    pub fn for_deal(mut self, deal_hash: String) -> NewScore {
        self.deal_hash = Some(deal_hash);
        self
    }
}

/// The latest stored score of an opportunity.
pub async fn latest(db: &Db, opportunity_id: i64) -> Result<Option<StoredScore>, sqlx::Error> {
    let row: Option<ScoreRow> = sqlx::query_as(LATEST_SQL)
        .bind(opportunity_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(StoredScore::from))
}

/// The latest stored score of an opportunity, with the hash of the deal it was computed from
/// (none for rows written without one).
pub async fn latest_with_deal(
    db: &Db,
    opportunity_id: i64,
) -> Result<Option<(StoredScore, Option<String>)>, sqlx::Error> {
    let row: Option<ScoreWithDealRow> = sqlx::query_as(
        "SELECT model_version, probability, score, grade, expected_value, focus, scored_at, deal_hash \
         FROM scores WHERE opportunity_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(opportunity_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|row| (row.score.into(), row.deal_hash)))
}

const LATEST_SQL: &str = "SELECT model_version, probability, score, grade, expected_value, focus, scored_at \
     FROM scores WHERE opportunity_id = $1 ORDER BY id DESC LIMIT 1";

/// The opportunity columns qualified with the `o` alias, for the join below (built once).
static ALIASED_OPPORTUNITY_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    opportunities::SELECT_COLUMNS
        .split(", ")
        .map(|c| format!("o.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
});

/// What scoring stored opportunities needs, read inside a caller's transaction in one statement
/// per 400 ids: each opportunity found, with its latest stored score (none when never scored).
pub async fn opportunities_with_latest_in(
    tx: &mut Transaction<'_, Any>,
    external_ids: &[&str],
) -> Result<HashMap<String, (StoredOpportunity, Option<StoredScore>)>, sqlx::Error> {
    let columns = ALIASED_OPPORTUNITY_COLUMNS.as_str();
    let rows: Vec<WithLatestRow> = select_by_keys(tx, None, external_ids, |_, list| {
        format!(
            "SELECT {columns}, s.model_version, s.probability, s.score, s.grade, s.expected_value, s.focus, \
             s.scored_at FROM opportunities o LEFT JOIN scores s \
             ON s.id = (SELECT MAX(id) FROM scores WHERE opportunity_id = o.id) \
             WHERE o.external_id IN ({list})"
        )
    })
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let stored = StoredOpportunity::try_from(row.opportunity)?;
        let latest = row.latest.map(StoredScore::from);
        out.insert(
            stored.opportunity.external_id.as_str().to_owned(),
            (stored, latest),
        );
    }
    Ok(out)
}

/// An opportunity's score history, newest first.
pub async fn history(db: &Db, opportunity_id: i64, limit: i64) -> Result<Vec<StoredScore>, sqlx::Error> {
    let rows: Vec<ScoreRow> = sqlx::query_as(
        "SELECT model_version, probability, score, grade, expected_value, focus, scored_at FROM scores \
         WHERE opportunity_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(opportunity_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(StoredScore::from).collect())
}

/// What moved a recorded score since the score recorded before it, so a rep sees why a deal
/// went from B to C: the model that scored it, the fields that changed, the activities that
/// happened in between.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ScoreMove {
    /// The version that scored the previous entry, when another model scored this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_model_version: Option<String>,
    /// Fields whose value dealscore recorded as changed in between (`stage`,
    /// `attributes.tier`…), each once, in the order their first change was recorded.
    pub fields: Vec<String>,
    /// Activities that occurred in between.
    pub activities: u64,
}

/// One entry of a deal's score history with what moved it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ExplainedScore {
    /// The score.
    #[serde(flatten)]
    pub score: StoredScore,
    /// What changed since the entry before it; absent for the deal's first recorded score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_previous: Option<ScoreMove>,
}

/// The latest `limit` scores of an opportunity, newest first, each with what moved it since the
/// score before it ([`ScoreMove`]): field changes by the time dealscore recorded them, activities
/// by the time they occurred. Three statements, whatever `limit`.
pub async fn history_explained(
    db: &Db,
    opportunity_id: i64,
    limit: i64,
) -> Result<Vec<ExplainedScore>, sqlx::Error> {
    // One more than shown: the oldest shown entry is explained against the one before it.
    let scores = history(db, opportunity_id, limit.saturating_add(1)).await?;
    let (Some(newest), Some(oldest)) = (scores.first(), scores.last()) else {
        return Ok(Vec::new());
    };
    let (from, to) = (to_epoch_ms(oldest.scored_at), to_epoch_ms(newest.scored_at));
    let fields: Vec<(String, i64)> = sqlx::query_as(
        "SELECT field, recorded_at FROM opportunity_history WHERE opportunity_id = $1 \
         AND recorded_at > $2 AND recorded_at <= $3 AND field <> '*' ORDER BY recorded_at, id",
    )
    .bind(opportunity_id)
    .bind(from)
    .bind(to)
    .fetch_all(&db.pool)
    .await?;
    let activities: Vec<(i64,)> = sqlx::query_as(
        "SELECT occurred_at FROM activities WHERE opportunity_id = $1 \
         AND occurred_at > $2 AND occurred_at <= $3",
    )
    .bind(opportunity_id)
    .bind(from)
    .bind(to)
    .fetch_all(&db.pool)
    .await?;
    let activities: Vec<i64> = activities.into_iter().map(|(at,)| at).collect();
    let mut explained = explain_moves(scores, &fields, &activities);
    explained.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(explained)
}

/// Pairs each score (newest first) with what happened between it and the next older one: the
/// `fields` recorded (field, epoch ms) and the `activities` that occurred (epoch ms) in
/// (older.scored_at, score.scored_at]. The oldest score has nothing to compare with.
fn explain_moves(
    scores: Vec<StoredScore>,
    fields: &[(String, i64)],
    activities: &[i64],
) -> Vec<ExplainedScore> {
    let older: Vec<Option<(String, i64)>> = scores
        .iter()
        .skip(1)
        .map(|s| Some((s.model_version.clone(), to_epoch_ms(s.scored_at))))
        .chain(std::iter::once(None))
        .collect();
    scores
        .into_iter()
        .zip(older)
        .map(|(score, older)| {
            let since_previous = older.map(|(model, from)| {
                let to = to_epoch_ms(score.scored_at);
                let within = |at: i64| at > from && at <= to;
                let mut changed: Vec<String> = Vec::new();
                for (field, _) in fields.iter().filter(|(_, at)| within(*at)) {
                    if !changed.contains(field) {
                        changed.push(field.clone());
                    }
                }
                ScoreMove {
                    previous_model_version: (model != score.model_version).then_some(model),
                    fields: changed,
                    activities: activities.iter().filter(|&&at| within(at)).count() as u64,
                }
            });
            ExplainedScore {
                score,
                since_previous,
            }
        })
        .collect()
}

/// A `scores` row without its ids: `scored_at` in epoch milliseconds.
#[derive(FromRow)]
struct ScoreRow {
    model_version: String,
    probability: f64,
    score: i64,
    grade: String,
    expected_value: Option<f64>,
    focus: String,
    scored_at: i64,
}

impl From<ScoreRow> for StoredScore {
    fn from(row: ScoreRow) -> Self {
        StoredScore {
            model_version: row.model_version,
            probability: row.probability,
            score: row.score,
            grade: row.grade,
            expected_value: row.expected_value,
            focus: row.focus,
            scored_at: from_epoch_ms(row.scored_at),
        }
    }
}

/// A `scores` row with the hash of the deal it was computed from.
#[derive(FromRow)]
struct ScoreWithDealRow {
    #[sqlx(flatten)]
    score: ScoreRow,
    deal_hash: Option<String>,
}

/// An opportunity joined to its latest score: the `LEFT JOIN` leaves the score columns NULL
/// when it was never scored, which `model_version` (never NULL in `scores`) tells.
struct WithLatestRow {
    opportunity: OpportunityRow,
    latest: Option<ScoreRow>,
}

impl<'r> FromRow<'r, AnyRow> for WithLatestRow {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        let scored = row.try_get::<Option<String>, _>("model_version")?.is_some();
        Ok(WithLatestRow {
            opportunity: OpportunityRow::from_row(row)?,
            latest: if scored {
                Some(ScoreRow::from_row(row)?)
            } else {
                None
            },
        })
    }
}

/// Records scores in one transaction.
pub async fn insert_batch(db: &Db, scores: &[NewScore]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    insert_batch_in(&mut tx, scores).await?;
    tx.commit().await
}

/// [`insert_batch`] inside a caller's transaction.
pub async fn insert_batch_in(tx: &mut Transaction<'_, Any>, scores: &[NewScore]) -> Result<(), sqlx::Error> {
    for chunk in scores.chunks(1000) {
        let sql = format!(
            "INSERT INTO scores (opportunity_id, model_version, probability, score, grade, expected_value, focus, \
             scored_at, deal_hash) VALUES {}",
            values_placeholders(Style::of(tx), chunk.len(), 9)
        );
        let mut query = sqlx::query(&sql);
        for s in chunk {
            query = query
                .bind(s.opportunity_id)
                .bind(s.score.model_version.clone())
                .bind(s.score.probability)
                .bind(s.score.score)
                .bind(s.score.grade.clone())
                .bind(OptionalF64(s.score.expected_value))
                .bind(s.score.focus.clone())
                .bind(to_epoch_ms(s.score.scored_at))
                .bind(s.deal_hash.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Latest score of each of the given opportunities (by internal id).
pub async fn latest_for(db: &Db, ids: &[i64]) -> Result<std::collections::HashMap<i64, i64>, sqlx::Error> {
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT s.opportunity_id, s.score FROM scores s JOIN (SELECT opportunity_id, MAX(id) AS id FROM scores \
             WHERE opportunity_id IN ({}) GROUP BY opportunity_id) last ON last.id = s.id",
            super::sql::list_placeholders(Style::for_backend(db.backend), chunk.len())
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        out.extend(query.fetch_all(&db.pool).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod move_tests {
    use super::*;

    fn score(model: &str, at_ms: i64) -> StoredScore {
        StoredScore {
            model_version: model.into(),
            probability: 0.5,
            score: 50,
            grade: "B".into(),
            expected_value: None,
            focus: "nurture".into(),
            scored_at: from_epoch_ms(at_ms),
        }
    }

    #[test]
    fn each_score_names_what_happened_since_the_one_before() {
        // Newest first: v2 at 300, v1 at 200, v1 at 100.
        let scores = vec![score("v2", 300), score("v1", 200), score("v1", 100)];
        let fields = vec![
            ("stage".to_owned(), 150),
            ("amount".to_owned(), 200),
            ("stage".to_owned(), 180),
            ("region".to_owned(), 250),
            ("owner".to_owned(), 100), // at the oldest score itself: before it, not after
        ];
        let activities = [120, 130, 301];
        let explained = explain_moves(scores, &fields, &activities);
        assert_eq!(
            explained[0].since_previous,
            Some(ScoreMove {
                previous_model_version: Some("v1".into()),
                fields: vec!["region".into()],
                activities: 0,
            })
        );
        assert_eq!(
            explained[1].since_previous,
            Some(ScoreMove {
                previous_model_version: None,
                fields: vec!["stage".into(), "amount".into()],
                activities: 2,
            })
        );
        assert_eq!(explained[2].since_previous, None);
    }

    #[test]
    fn no_scores_nothing_to_explain() {
        assert!(explain_moves(Vec::new(), &[], &[]).is_empty());
    }
}
