//! Rescoring every open deal with the active model: the scores the lists, the forecast and the
//! at-risk view read. The API's rescoring job and the demo (before it serves) both run it.

use std::sync::Arc;

use chrono::Utc;

use crate::i18n::Lang;
use crate::scoring::{score, RankBy, ScoringConfig};
use crate::serving::{history_row, LoadedModel};
use crate::store::opportunities;
use crate::store::scores;
use crate::store::Db;

/// Scores every open opportunity and records the scores, page by page. Returns the count.
pub async fn rescore_all(
    db: &Db,
    model: Arc<LoadedModel>,
    config: ScoringConfig,
    progress: impl Fn(u64),
) -> anyhow::Result<u64> {
    let mut done = 0u64;
    let mut pages = opportunities::OpenDealPages::new(db);
    while let Some(page) = pages.next_page().await? {
        let (model, config) = (model.clone(), config.clone());
        let new_scores = tokio::task::spawn_blocking(move || {
            let now = Utc::now();
            page.deals
                .iter()
                .map(|o| {
                    let prev = page.previous.get(&o.id).copied();
                    // Only numbers are stored: the language of the unused sentences is moot.
                    let result = score(
                        &model,
                        &config,
                        &o.opportunity,
                        now,
                        prev,
                        RankBy::Probability,
                        Lang::En,
                    );
                    history_row(o.id, &result, Utc::now())
                        .for_deal(opportunities::content_hash(&o.opportunity))
                })
                .collect::<Vec<_>>()
        })
        .await?;
        scores::insert_batch(db, &new_scores).await?;
        done += new_scores.len() as u64;
        progress(done);
    }
    Ok(done)
}
