//! Open deals ranked by priority: the rep's work list, shared by `GET /v1/opportunities/priority`
//! and the web UI's "My deals" page.
//!
//! Every matching open deal is scored now (the stored score only gives the trend), then
//! filtered by grade and focus and sorted by the chosen key.

use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Status;
use crate::error::ApiError;
use crate::model::ModelArtifact;
use crate::scoring::{score, Focus, Grade, Intervention, RankBy, ScoringConfig, Trend};
use crate::store::opportunities::{self, ListFilter};
use crate::store::{scores, Db};

/// What the list is sorted by, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// probability × amount (default).
    #[default]
    Value,
    /// Score.
    Score,
    /// Probability uplift of the next intervention.
    Uplift,
}

impl SortKey {
    /// Parses `value`, `score` or `uplift`.
    pub fn parse(text: &str) -> Option<SortKey> {
        match text {
            "value" => Some(SortKey::Value),
            "score" => Some(SortKey::Score),
            "uplift" => Some(SortKey::Uplift),
            _ => None,
        }
    }

    /// The query-string name.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Value => "value",
            SortKey::Score => "score",
            SortKey::Uplift => "uplift",
        }
    }
}

/// Which open deals, in which order.
#[derive(Debug, Clone, Default)]
pub struct PriorityQuery {
    /// Owner, region and sector filters (status is forced to open).
    pub filter: ListFilter,
    /// Only this grade.
    pub grade: Option<Grade>,
    /// Only this focus.
    pub focus: Option<Focus>,
    /// Sort key.
    pub sort: SortKey,
}

/// One row of the priority list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PriorityItem {
    /// CRM id.
    pub external_id: String,
    /// Deal name.
    pub name: Option<String>,
    /// Account.
    pub account: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Amount.
    pub amount: Option<f64>,
    /// Currency.
    pub currency: String,
    /// Score 0–100.
    pub score: u8,
    /// Grade.
    pub grade: Grade,
    /// Trend against the last stored score.
    pub trend: Trend,
    /// Focus.
    pub focus: Focus,
    /// probability × amount.
    pub expected_value: Option<f64>,
    /// The next intervention.
    pub next_intervention: Option<Intervention>,
}

/// Every open deal matching `query`, scored and sorted (ties by external id).
pub async fn ranked(
    db: &Db,
    model: Arc<ModelArtifact>,
    config: &ScoringConfig,
    query: &PriorityQuery,
) -> Result<Vec<PriorityItem>, ApiError> {
    let filter = ListFilter {
        status: Some(Status::Open),
        ..query.filter.clone()
    };
    let mut items: Vec<PriorityItem> = Vec::new();
    let mut after = 0;
    loop {
        let (page, more) = opportunities::list(db, &filter, after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let ids: Vec<i64> = page.iter().map(|o| o.id).collect();
        let previous = scores::latest_for(db, &ids).await?;
        let (model, config) = (model.clone(), config.clone());
        let scored = tokio::task::spawn_blocking(move || {
            let now = Utc::now();
            page.into_iter()
                .map(|o| {
                    let prev = previous.get(&o.id).map(|s| (*s).clamp(0, 100) as u8);
                    let r = score(&model, &config, &o.opportunity, now, prev, RankBy::Value);
                    let opp = o.opportunity;
                    PriorityItem {
                        external_id: opp.external_id,
                        name: opp.name,
                        account: opp.account,
                        owner: opp.owner,
                        amount: opp.amount,
                        currency: opp.currency,
                        score: r.score,
                        grade: r.grade,
                        trend: r.trend,
                        focus: r.focus,
                        expected_value: r.expected_value,
                        next_intervention: r.next_intervention,
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("scoring thread failed: {e}")))?;
        items.extend(scored.into_iter().filter(|i| {
            query.grade.is_none_or(|g| i.grade == g) && query.focus.is_none_or(|f| i.focus == f)
        }));
        if !more {
            break;
        }
    }
    let key = |i: &PriorityItem| -> f64 {
        match query.sort {
            SortKey::Score => f64::from(i.score),
            SortKey::Uplift => i.next_intervention.as_ref().map_or(0.0, |n| n.uplift),
            SortKey::Value => i.expected_value.unwrap_or(0.0),
        }
    };
    items.sort_by(|a, b| {
        key(b)
            .total_cmp(&key(a))
            .then_with(|| a.external_id.cmp(&b.external_id))
    });
    Ok(items)
}
