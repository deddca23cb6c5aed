//! `POST /v1/score` with `{"opportunities": [...]}` (up to 10,000 items): the items are split into
//! one contiguous run per core, each run is scored *and written as JSON* on its own blocking
//! thread, and the runs are joined into the answer in request order. Items arrive as raw JSON
//! text ([`super::score_body`]) and are parsed on those threads too.
//!
//! A 10,000-item answer is about 24 MB of JSON (every result carries its factor sentences and
//! levers), so writing it costs as much as scoring; doing both on one thread left the other core
//! idle (BENCHMARKS.md, "`POST /v1/score` in batches of 10,000"). The bytes are the same as
//! serialising [`BatchAnswer`] in one go (a unit test checks it).

use std::io::Write;
use std::sync::Arc;

use actix_web::web::Bytes;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use super::score_body::item_value;
use super::scores::{parse_for_scoring, BatchAnswer, BatchItem};
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::scoring::{score, RankBy, ScoringConfig};
use crate::serving::LoadedModel;

/// Everything the items of one batch are scored with.
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// The model.
    pub model: Arc<LoadedModel>,
    /// Scoring rules.
    pub config: ScoringConfig,
    /// How levers are ranked.
    pub rank: RankBy,
    /// Language of the sentences and field errors.
    pub lang: Lang,
    /// The instant every item is scored at (the same for the whole batch).
    pub now: DateTime<Utc>,
}

impl BatchJob {
    /// The answer for the item at `index`.
    pub fn item(&self, index: usize, item: &RawValue) -> BatchItem {
        match parse_for_scoring(&item_value(item), Some(index)) {
            Ok(opp) => BatchItem {
                index,
                result: Some(score(
                    &self.model,
                    &self.config,
                    &opp,
                    self.now,
                    None,
                    self.rank,
                    self.lang,
                )),
                errors: Vec::new(),
            },
            Err(e) => BatchItem {
                index,
                result: None,
                errors: e.in_lang(self.lang).0,
            },
        }
    }

    /// The whole answer, on this thread.
    pub fn answer(&self, items: &[Box<RawValue>]) -> BatchAnswer {
        let results: Vec<BatchItem> = items.iter().enumerate().map(|(i, v)| self.item(i, v)).collect();
        let invalid = results.iter().filter(|r| r.result.is_none()).count();
        BatchAnswer {
            model_version: self.model.version.clone(),
            scored: results.len() - invalid,
            invalid,
            results,
        }
    }

    /// One run of items, from position `first`: their JSON separated by commas, and how many
    /// were invalid.
    fn part(&self, first: usize, items: &[Box<RawValue>]) -> Result<Part, serde_json::Error> {
        let mut json = Vec::with_capacity(items.len() * 2_600);
        let mut invalid = 0;
        for (offset, value) in items.iter().enumerate() {
            let item = self.item(first + offset, value);
            invalid += usize::from(item.result.is_none());
            if offset > 0 {
                json.push(b',');
            }
            super::score_json::write(&mut json, &item)?;
        }
        Ok(Part {
            json,
            items: items.len(),
            invalid,
        })
    }

    /// The answer's JSON, computed on `threads` blocking threads, as consecutive chunks (the
    /// parts are sent as they are, not copied into one buffer: the answer is ~24 MB at 10,000).
    pub async fn answer_json(
        self,
        items: Vec<Box<RawValue>>,
        threads: usize,
    ) -> Result<Vec<Bytes>, ApiError> {
        let job = Arc::new(self);
        let worker = job.clone();
        let parts =
            crate::scoring::parallel::in_runs(items, threads, move |first, run| worker.part(first, &run))
                .await
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("scoring thread failed: {e}")))?;
        let done = parts
            .into_iter()
            .collect::<Result<Vec<Part>, _>>()
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
        assemble(&job.model.version, done).map_err(|e| ApiError::Internal(anyhow::Error::new(e)))
    }
}

/// A run of scored items as JSON.
struct Part {
    json: Vec<u8>,
    items: usize,
    invalid: usize,
}

/// `{"model_version":…,"scored":…,"invalid":…,"results":[…]}` from the parts, in order (the field
/// order of [`BatchAnswer`]), as chunks to send one after the other.
fn assemble(model_version: &str, parts: Vec<Part>) -> Result<Vec<Bytes>, std::io::Error> {
    let total: usize = parts.iter().map(|p| p.items).sum();
    let invalid: usize = parts.iter().map(|p| p.invalid).sum();
    let mut head = b"{\"model_version\":".to_vec();
    serde_json::to_writer(&mut head, model_version)?;
    write!(
        head,
        ",\"scored\":{},\"invalid\":{invalid},\"results\":[",
        total - invalid
    )?;
    let mut chunks = vec![Bytes::from(head)];
    for (i, part) in parts.into_iter().filter(|p| p.items > 0).enumerate() {
        if i > 0 {
            chunks.push(Bytes::from_static(b","));
        }
        chunks.push(Bytes::from(part.json));
    }
    chunks.push(Bytes::from_static(b"]}"));
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::fixtures::trained_on_generated;
    use serde_json::json;

    fn joined(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    #[actix_web::test]
    async fn parallel_answers_are_byte_for_byte_the_single_thread_answer() {
        let (artifact, _, now) = trained_on_generated(1_500, 5);
        let job = BatchJob {
            model: Arc::new(LoadedModel::new(artifact)),
            config: ScoringConfig::default(),
            rank: RankBy::Probability,
            lang: Lang::Fr,
            now,
        };
        let mut items: Vec<serde_json::Value> = (0..11)
            .map(|i| {
                let sector = ["software", "retail", "energy"][i % 3];
                json!({"sector": sector, "contact_role": "end_user", "amount": 1000 * i,
                       "cycle_days": 3 * i, "interaction_count": i, "response_hours": 2.5})
            })
            .collect();
        items[4] = json!("not an object");
        items[7] = json!({"amount": -1});
        let items: Vec<Box<RawValue>> = items
            .iter()
            .map(|v| serde_json::value::to_raw_value(v).expect("raw"))
            .collect();
        let expected = serde_json::to_vec(&job.answer(&items)).expect("serialise");
        for threads in [1, 2, 3, 11, 20] {
            let got = job
                .clone()
                .answer_json(items.clone(), threads)
                .await
                .expect("answer");
            let got = joined(&got);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
                "{threads} threads"
            );
        }
        let empty = job.clone().answer_json(Vec::new(), 2).await.expect("empty");
        let empty = joined(&empty);
        assert_eq!(empty, serde_json::to_vec(&job.answer(&[])).expect("serialise"));
    }
}
