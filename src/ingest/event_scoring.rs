//! The score a webhook answers with: computed right after the event is applied, inside the same
//! transaction, so the event, its score history row and any write-back are committed together
//! (one commit per delivery, shared with concurrent deliveries by the group commit).

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use sqlx::{Any, Connection, Transaction};

use super::webhook::Source;
use crate::i18n::Lang;
use crate::model::ModelArtifact;
use crate::scoring::{RankBy, ScoreResult, ScoringConfig};
use crate::store::opportunities::get_in;
use crate::store::scores::{self, NewScore, StoredScore};

/// The score part of an opportunity event's answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScoreAnswer {
    /// The fresh score result (same shape as the scoring API), or null when scoring is unavailable.
    #[schema(value_type = Object)]
    pub score: Option<Value>,
    /// `ok` or `unavailable`.
    pub scoring: &'static str,
    /// Why scoring is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scoring_reason: Option<String>,
}

impl ScoreAnswer {
    fn unavailable(reason: impl Into<String>) -> ScoreAnswer {
        ScoreAnswer {
            score: None,
            scoring: "unavailable",
            scoring_reason: Some(reason.into()),
        }
    }
}

/// What the synchronous scoring after an event needs: a snapshot taken when the delivery arrives.
#[derive(Debug, Clone)]
pub struct EventScoring {
    /// The serving model at arrival (none: events are stored, answers say scoring is unavailable).
    pub model: Option<Arc<ModelArtifact>>,
    /// Grade cuts and thresholds.
    pub config: ScoringConfig,
    /// Score move (points) that triggers a write-back even without a grade change.
    pub writeback_min_points: f64,
    /// Language of the answer's sentences (the delivery's `Accept-Language` or `?lang=`); a
    /// write-back of this score carries the same sentences.
    pub lang: Lang,
}

/// Scores `external_id` after its event was applied in `tx`: the score is recorded in the history
/// and — when the source has a callback URL and the grade changed or the score moved by at least
/// `writeback_min_points` — queued for write-back. Runs in a savepoint: if scoring fails, only the
/// score is rolled back, the event stays, and the answer says scoring is unavailable.
pub async fn score_in(
    tx: &mut Transaction<'_, Any>,
    source: &Source,
    scoring: &EventScoring,
    external_id: &str,
) -> ScoreAnswer {
    let Some(model) = &scoring.model else {
        return ScoreAnswer::unavailable(Unavailable::NoModel.text(scoring.lang));
    };
    let mut savepoint = match Connection::begin(&mut **tx).await {
        Ok(savepoint) => savepoint,
        Err(e) => return failed(external_id, &e, scoring.lang),
    };
    match score_and_record(&mut savepoint, source, scoring, model, external_id).await {
        Ok(result) => match savepoint.commit().await {
            Ok(()) => match result {
                Some(result) => ScoreAnswer {
                    score: serde_json::to_value(&result).ok(),
                    scoring: "ok",
                    scoring_reason: None,
                },
                None => ScoreAnswer::unavailable(Unavailable::Gone.text(scoring.lang)),
            },
            Err(e) => failed(external_id, &e, scoring.lang),
        },
        Err(e) => {
            let _ = savepoint.rollback().await;
            failed(external_id, &e, scoring.lang)
        }
    }
}

/// Why an event's answer carries no score.
enum Unavailable {
    NoModel,
    Gone,
    Failed,
}

impl Unavailable {
    fn text(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Unavailable::NoModel, Lang::En) => "no active model: the event is stored and will be scored once one is",
            (Unavailable::NoModel, Lang::Fr) => {
                "aucun modèle actif\u{A0}: l'événement est enregistré et sera évalué dès qu'il y en aura un"
            }
            (Unavailable::Gone, Lang::En) => "the opportunity no longer exists",
            (Unavailable::Gone, Lang::Fr) => "l'opportunité n'existe plus",
            (Unavailable::Failed, Lang::En) => "scoring failed after the event was stored; see the server log",
            (Unavailable::Failed, Lang::Fr) => {
                "l'évaluation a échoué après l'enregistrement de l'événement\u{202F}; voir le journal du serveur"
            }
        }
    }
}

fn failed(external_id: &str, e: &sqlx::Error, lang: Lang) -> ScoreAnswer {
    // The event itself is kept; only the score failed, so the answer stays 2xx.
    tracing::error!(error = %e, external_id, "scoring after a webhook event failed");
    ScoreAnswer::unavailable(Unavailable::Failed.text(lang))
}

async fn score_and_record(
    tx: &mut Transaction<'_, Any>,
    source: &Source,
    scoring: &EventScoring,
    model: &ModelArtifact,
    external_id: &str,
) -> Result<Option<ScoreResult>, sqlx::Error> {
    let Some(stored) = get_in(tx, external_id).await? else {
        return Ok(None);
    };
    let previous = scores::latest_in(tx, stored.id).await?;
    let previous_score = previous.as_ref().map(|p| p.score.clamp(0, 100) as u8);
    let now = chrono::Utc::now();
    let result = crate::scoring::score(
        model,
        &scoring.config,
        &stored.opportunity,
        now,
        previous_score,
        RankBy::Probability,
        scoring.lang,
    );
    let new = NewScore {
        opportunity_id: stored.id,
        score: StoredScore {
            model_version: result.model_version.clone(),
            probability: result.probability,
            score: i64::from(result.score),
            grade: result.grade.as_str().to_owned(),
            expected_value: result.expected_value,
            focus: result.focus.as_str().to_owned(),
            scored_at: now,
        },
    };
    scores::insert_batch_in(tx, std::slice::from_ref(&new)).await?;
    let old = previous.as_ref().map(|p| (p.score as f64, p.grade.as_str()));
    let worth = crate::writeback::is_worth_writing_back(
        old,
        (f64::from(result.score), result.grade.as_str()),
        scoring.writeback_min_points,
    );
    if source.callback_url.is_some() && worth {
        let payload = serde_json::json!({
            "external_id": external_id,
            "previous_score": previous_score,
            "result": &result,
        });
        crate::writeback::enqueue_score_change(tx, &source.name, external_id, payload).await?;
    }
    Ok(Some(result))
}
