//! The score a webhook answers with: computed right after the event is applied, inside the same
//! transaction, so the event, its score history row and any write-back are committed together
//! (one commit per delivery, shared with concurrent deliveries by the group commit).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Any, Connection, Transaction};

use super::source::Source;
use super::writeback;
use crate::i18n::Lang;
use crate::scoring::{RankBy, ScoreResult, ScoringConfig};
use crate::store::distinct_runs;
use crate::store::opportunities::content_hash;
use crate::store::scores;

/// The score part of an opportunity event's answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScoreAnswer {
    /// The fresh score result (same shape as the scoring API), or null when scoring is unavailable.
    /// Kept typed until the answer is written: converting it to a `serde_json::Value` here cost
    /// the webhook group (which holds the single SQLite writer) a tree of maps per event.
    pub score: Option<Box<ScoreResult>>,
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
    pub model: Option<Arc<crate::serving::LoadedModel>>,
    /// Grade cuts and thresholds.
    pub config: ScoringConfig,
    /// Score move (points) that triggers a write-back even without a grade change.
    pub writeback_min_points: f64,
    /// Language of the answer's sentences (the delivery's `Accept-Language` or `?lang=`); a
    /// write-back of this score carries the same sentences.
    pub lang: Lang,
}

/// One event answer waiting for its score: the opportunity, with the settings of the delivery
/// it came in.
#[derive(Debug, Clone, Copy)]
pub struct ScoreRequest<'a> {
    /// The opportunity to score.
    pub external_id: &'a str,
    /// The delivery's source (for write-backs).
    pub source: &'a Source,
    /// The delivery's scoring snapshot.
    pub scoring: &'a EventScoring,
    /// False for an event that changed nothing (a duplicate, an ignored older event): its answer
    /// carries the score, but no history row and no write-back are added.
    pub record: bool,
}

/// Scores opportunities after their events were applied in `tx`, one answer per request: each
/// score asked to be recorded goes into the history and — when the source has a callback URL and
/// the grade changed or the score moved by at least `writeback_min_points` — is queued for
/// write-back.
/// Set-based: the stored rows and their latest scores are read with one statement each and the
/// new scores written with one insert. Runs in one savepoint: if scoring fails, only the scores
/// are rolled back, the events stay, and the answers say scoring is unavailable. An opportunity
/// asked twice is scored twice, the second time against the first's score.
pub async fn score_many_in(tx: &mut Transaction<'_, Any>, requests: &[ScoreRequest<'_>]) -> Vec<ScoreAnswer> {
    let with_model: Vec<usize> = (0..requests.len())
        .filter(|i| requests[*i].scoring.model.is_some())
        .collect();
    let mut scored: Vec<Option<ScoreResult>> = Vec::new();
    let mut failure = None;
    if !with_model.is_empty() {
        let attempt = match Connection::begin(&mut **tx).await {
            Err(e) => Err(e),
            Ok(mut savepoint) => match score_and_record(&mut savepoint, requests, &with_model).await {
                Ok(results) => savepoint.commit().await.map(|()| results),
                Err(e) => {
                    let _ = savepoint.rollback().await;
                    Err(e)
                }
            },
        };
        match attempt {
            Ok(results) => scored = results,
            Err(e) => failure = Some(e),
        }
    }
    let mut scored = scored.into_iter();
    requests
        .iter()
        .map(|request| {
            let lang = request.scoring.lang;
            if request.scoring.model.is_none() {
                return ScoreAnswer::unavailable(Unavailable::NoModel.text(lang));
            }
            if let Some(e) = &failure {
                return failed(request.external_id, e, lang);
            }
            match scored.next().flatten() {
                Some(result) => ScoreAnswer {
                    score: Some(Box::new(result)),
                    scoring: "ok",
                    scoring_reason: None,
                },
                None => ScoreAnswer::unavailable(Unavailable::Gone.text(lang)),
            }
        })
        .collect()
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
                "aucun modèle actif\u{202F}: l'événement est enregistré et sera évalué dès qu'il y en aura un"
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

/// Scores `requests[i]` for each `i` in `indices` (all with a model), run by run so that an
/// opportunity asked twice sees its first new score as the previous one. One result per index;
/// `None` when the opportunity no longer exists.
async fn score_and_record(
    tx: &mut Transaction<'_, Any>,
    requests: &[ScoreRequest<'_>],
    indices: &[usize],
) -> Result<Vec<Option<ScoreResult>>, sqlx::Error> {
    let now = chrono::Utc::now();
    let mut results = Vec::with_capacity(indices.len());
    for run in distinct_runs(indices.iter().map(|i| requests[*i].external_id)) {
        let run = &indices[run];
        let ids: Vec<&str> = run.iter().map(|i| requests[*i].external_id).collect();
        let mut stored = scores::opportunities_with_latest_in(tx, &ids).await?;
        // The ids of a run are distinct, so each stored row is taken once.
        let jobs: Vec<Option<ScoreJob>> = run
            .iter()
            .map(|&i| {
                let request = requests[i];
                let model = request.scoring.model.clone()?;
                let (stored, previous) = stored.remove(request.external_id)?;
                Some(ScoreJob {
                    model,
                    config: request.scoring.config.clone(),
                    lang: request.scoring.lang,
                    opportunity_id: stored.id,
                    opportunity: stored.opportunity,
                    previous: previous.map(|p| (p.score.clamp(0, 100) as u8, p.grade)),
                })
            })
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let scored = compute_scores(jobs, now, threads).await?;
        let mut new_scores = Vec::with_capacity(run.len());
        for (&i, outcome) in run.iter().zip(scored) {
            let request = requests[i];
            let Some((job, result)) = outcome else {
                results.push(None);
                continue;
            };
            if !request.record {
                results.push(Some(result));
                continue;
            }
            let deal_hash = content_hash(&job.opportunity);
            new_scores
                .push(crate::serving::history_row(job.opportunity_id, &result, now).for_deal(deal_hash));
            let previous_score = job.previous.as_ref().map(|(score, _)| *score);
            let old = job
                .previous
                .as_ref()
                .map(|(score, grade)| (f64::from(*score), grade.as_str()));
            let worth = writeback::is_worth_writing_back(
                old,
                (f64::from(result.score), result.grade.as_str()),
                request.scoring.writeback_min_points,
            );
            if request.source.callback_url.is_some() && worth {
                let payload = serde_json::json!({
                    "external_id": request.external_id,
                    "previous_score": previous_score,
                    "result": &result,
                });
                writeback::enqueue_score_change(tx, &request.source.name, request.external_id, payload)
                    .await?;
            }
            results.push(Some(result));
        }
        scores::insert_batch_in(tx, &new_scores).await?;
    }
    Ok(results)
}

/// Runs of at least this many scores are computed on every core; below it, handing the work to
/// other threads costs more than it saves.
const PARALLEL_SCORES: usize = 128;

/// One opportunity to score, with everything the computation needs (owned: it may run on
/// another thread).
struct ScoreJob {
    model: Arc<crate::serving::LoadedModel>,
    config: ScoringConfig,
    lang: Lang,
    opportunity_id: i64,
    opportunity: crate::domain::Opportunity,
    /// The latest stored score and grade, if any.
    previous: Option<(u8, String)>,
}

impl ScoreJob {
    fn score(&self, now: DateTime<Utc>) -> ScoreResult {
        crate::scoring::score(
            &self.model,
            &self.config,
            &self.opportunity,
            now,
            self.previous.as_ref().map(|(score, _)| *score),
            RankBy::Probability,
            self.lang,
        )
    }
}

/// Scores the jobs, in order, on up to `threads` blocking threads. The group that asks holds the
/// write transaction (on SQLite, the only writer) while it waits, so a large run is split over
/// every core: a batch of 1,000 events spent about a seventh of its group's time computing
/// scores on one thread.
async fn compute_scores(
    jobs: Vec<Option<ScoreJob>>,
    now: DateTime<Utc>,
    threads: usize,
) -> Result<Vec<Option<(ScoreJob, ScoreResult)>>, sqlx::Error> {
    let score_all = move |jobs: Vec<Option<ScoreJob>>| -> Vec<Option<(ScoreJob, ScoreResult)>> {
        jobs.into_iter()
            .map(|job| {
                job.map(|job| {
                    let result = job.score(now);
                    (job, result)
                })
            })
            .collect()
    };
    if jobs.len() < PARALLEL_SCORES || threads < 2 {
        return Ok(score_all(jobs));
    }
    let runs = crate::scoring::parallel::in_runs(jobs, threads, move |_, run| score_all(run))
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("scoring thread failed: {e}")))?;
    Ok(runs.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::fixtures::trained_on_generated;

    #[tokio::test]
    async fn scores_computed_on_several_threads_come_back_in_order() {
        let (artifact, deals, now) = trained_on_generated(1_500, 9);
        let model = Arc::new(crate::serving::LoadedModel::new(artifact));
        let jobs = || -> Vec<Option<ScoreJob>> {
            deals
                .iter()
                .take(PARALLEL_SCORES * 3 + 5)
                .enumerate()
                .map(|(i, deal)| {
                    (i % 17 != 3).then(|| ScoreJob {
                        model: model.clone(),
                        config: ScoringConfig::default(),
                        lang: Lang::En,
                        opportunity_id: i as i64,
                        opportunity: deal.clone(),
                        previous: (i % 2 == 0).then(|| ((i % 101) as u8, "C".to_owned())),
                    })
                })
                .collect()
        };
        let expected: Vec<Option<ScoreResult>> = jobs()
            .iter()
            .map(|job| job.as_ref().map(|job| job.score(now)))
            .collect();
        for threads in [1, 2, 3, 8] {
            let got = compute_scores(jobs(), now, threads).await.expect("scores");
            assert_eq!(got.len(), expected.len(), "{threads} threads");
            for (i, (got, expected)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(
                    got.as_ref().map(|(job, _)| job.opportunity_id),
                    expected.as_ref().map(|_| i as i64)
                );
                assert_eq!(
                    got.as_ref().map(|(_, result)| result),
                    expected.as_ref(),
                    "{threads} threads, job {i}"
                );
            }
        }
    }
}
