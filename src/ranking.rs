//! Open deals ranked by priority: the rep's work list, shared by `GET /v1/opportunities/priority`
//! and the web UI's "My deals" page.
//!
//! Every open deal is scored (the stored score only gives the trend) into one list that a
//! [`PriorityCache`] keeps while nothing changes: the database's change stamp (bumped by every
//! write to opportunities and scores), the serving model version and at most
//! [`MAX_AGE`] of wall-clock time, since scores depend on deal age. Requests then filter and
//! sort that list in memory, so a page of a rep's deals costs microseconds instead of a scoring
//! pass over every open deal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Opportunity;
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::model::ModelArtifact;
use crate::refresh::Refreshing;
use crate::scoring::{score, Focus, Grade, Intervention, RankBy, ScoringConfig, Trend};
use crate::serving::LoadedModel;
use crate::store::opportunities::{ListFilter, OpenDealPages};
use crate::store::{insights as changes, Db};

/// Longest time a scored list is reused without any write (deal ages move by the hour).
pub const MAX_AGE: Duration = Duration::from_secs(60);

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
    /// Owner, region and sector filters and the caller's scope (status is forced to open).
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
    /// Region.
    pub region: Option<String>,
    /// Sector.
    pub sector: Option<String>,
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

/// Every open deal, scored now, in id order.
async fn score_all(
    db: &Db,
    model: Arc<LoadedModel>,
    config: &ScoringConfig,
    lang: Lang,
) -> Result<Vec<PriorityItem>, ApiError> {
    let mut items: Vec<PriorityItem> = Vec::new();
    let mut pages = OpenDealPages::new(db);
    while let Some(page) = pages.next_page().await? {
        let (model, config) = (model.clone(), config.clone());
        let scored = tokio::task::spawn_blocking(move || {
            let now = Utc::now();
            page.deals
                .into_iter()
                .map(|o| {
                    let prev = page.previous.get(&o.id).copied();
                    let r = score(&model, &config, &o.opportunity, now, prev, RankBy::Value, lang);
                    let Opportunity {
                        external_id,
                        deal: opp,
                    } = o.opportunity;
                    PriorityItem {
                        external_id: external_id.into(),
                        name: opp.name,
                        account: opp.account,
                        owner: opp.owner,
                        region: opp.region,
                        sector: opp.sector,
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
        items.extend(scored);
    }
    Ok(items)
}

/// Every open deal scored, as of one database state and one model.
#[derive(Debug)]
pub struct ScoredOpenDeals {
    stamp: i64,
    model_version: String,
    at: Instant,
    /// When it was built.
    pub built_at: chrono::DateTime<Utc>,
    /// The deals, in id order.
    pub items: Vec<PriorityItem>,
    /// Owners, regions and sectors present among them, each sorted and distinct.
    pub facets: [Vec<String>; 3],
}

fn facets(items: &[PriorityItem]) -> [Vec<String>; 3] {
    facets_of(items.iter())
}

/// Owners, regions and sectors present among `items`, each sorted and distinct.
pub fn facets_of<'a>(items: impl Iterator<Item = &'a PriorityItem> + Clone) -> [Vec<String>; 3] {
    let collect = |get: fn(&PriorityItem) -> Option<&String>| {
        let set: std::collections::BTreeSet<&String> = items.clone().filter_map(get).collect();
        set.into_iter().cloned().collect::<Vec<_>>()
    };
    [
        collect(|i| i.owner.as_ref()),
        collect(|i| i.region.as_ref()),
        collect(|i| i.sector.as_ref()),
    ]
}

/// Keeps the last scored list per language, since interventions are sentences (see the module
/// documentation for when a list is rebuilt).
#[derive(Debug, Default)]
pub struct PriorityCache {
    english: Refreshing<ScoredOpenDeals>,
    french: Refreshing<ScoredOpenDeals>,
}

/// A scored list and whether it predates the last write (a newer one is being built).
#[derive(Debug, Clone)]
pub struct MaybeStale {
    /// The list.
    pub list: Arc<ScoredOpenDeals>,
    /// True when the data changed since it was built.
    pub stale: bool,
}

fn is_fresh(list: &ScoredOpenDeals, stamp: i64, model: &ModelArtifact) -> bool {
    list.stamp == stamp && list.model_version == model.version && list.at.elapsed() < MAX_AGE
}

async fn build(
    db: &Db,
    model: Arc<LoadedModel>,
    config: &ScoringConfig,
    lang: Lang,
    stamp: i64,
) -> Result<Arc<ScoredOpenDeals>, ApiError> {
    let model_version = model.version.clone();
    let items = score_all(db, model, config, lang).await?;
    Ok(Arc::new(ScoredOpenDeals {
        stamp,
        model_version,
        at: Instant::now(),
        built_at: Utc::now(),
        facets: facets(&items),
        items,
    }))
}

impl PriorityCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The list kept for `lang`, fresh or not (none before the first build).
    pub fn kept(&self, lang: Lang) -> Option<Arc<ScoredOpenDeals>> {
        self.slot(lang).get()
    }

    fn slot(&self, lang: Lang) -> &Refreshing<ScoredOpenDeals> {
        match lang {
            Lang::En => &self.english,
            Lang::Fr => &self.french,
        }
    }

    /// The scored open deals as of the last committed write, rebuilt when needed. Concurrent
    /// callers wait for one rebuild rather than each scoring everything.
    pub async fn scored(
        &self,
        db: &Db,
        model: Arc<LoadedModel>,
        config: &ScoringConfig,
        lang: Lang,
    ) -> Result<Arc<ScoredOpenDeals>, ApiError> {
        let stamp = changes::change_stamp(db).await?;
        self.slot(lang)
            .fresh(
                |l| is_fresh(l, stamp, &model),
                false,
                || build(db, model.clone(), config, lang, stamp),
            )
            .await
    }

    /// Like [`PriorityCache::scored`], but when the data changed since the last list and that
    /// list is younger than `max_stale` (same model), answers it at once and rebuilds in the
    /// background. For pages a person reads, where a list a few seconds behind beats a wait of
    /// a whole scoring pass; the API keeps [`PriorityCache::scored`].
    pub async fn scored_or_recent(
        &self,
        db: &Db,
        model: Arc<LoadedModel>,
        config: &ScoringConfig,
        lang: Lang,
        max_stale: Duration,
    ) -> Result<MaybeStale, ApiError> {
        let stamp = changes::change_stamp(db).await?;
        let previous = self.slot(lang).get();
        if let Some(list) = previous.clone().filter(|l| is_fresh(l, stamp, &model)) {
            return Ok(MaybeStale { list, stale: false });
        }
        let usable = previous.filter(|l| l.model_version == model.version && l.at.elapsed() < max_stale);
        if let Some(list) = usable {
            // One background rebuild at a time; if one is running, this view just uses the old list.
            let (db, config) = (db.clone(), config.clone());
            self.slot(lang)
                .rebuild_in_background("priority list", async move {
                    build(&db, model, &config, lang, stamp).await
                });
            return Ok(MaybeStale { list, stale: true });
        }
        let list = self.scored(db, model, config, lang).await?;
        Ok(MaybeStale { list, stale: false })
    }
}

/// The deals of `scored` matching `query`, sorted (ties by external id).
pub fn ranked<'a>(scored: &'a ScoredOpenDeals, query: &PriorityQuery) -> Vec<&'a PriorityItem> {
    let f = &query.filter;
    let same = |want: &Option<String>, have: &Option<String>| want.is_none() || want == have;
    let mut items: Vec<&PriorityItem> = scored
        .items
        .iter()
        .filter(|i| {
            f.scope.admits(i.owner.as_deref(), i.region.as_deref())
                && same(&f.owner, &i.owner)
                && same(&f.region, &i.region)
                && same(&f.sector, &i.sector)
                && query.grade.is_none_or(|g| i.grade == g)
                && query.focus.is_none_or(|x| i.focus == x)
        })
        .collect();
    let key = |i: &&PriorityItem| -> f64 {
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
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, owner: &str, score: u8, value: f64, focus: Focus) -> PriorityItem {
        PriorityItem {
            external_id: id.into(),
            name: None,
            account: None,
            owner: Some(owner.into()),
            region: Some("EMEA".into()),
            sector: None,
            amount: Some(value * 2.0),
            currency: "EUR".into(),
            score,
            grade: crate::scoring::grade(score, [60, 40, 20]),
            trend: Trend::New,
            focus,
            expected_value: Some(value),
            next_intervention: None,
        }
    }

    fn scored(items: Vec<PriorityItem>) -> ScoredOpenDeals {
        ScoredOpenDeals {
            stamp: 1,
            model_version: "m".into(),
            at: Instant::now(),
            built_at: Utc::now(),
            facets: facets(&items),
            items,
        }
    }

    #[test]
    fn filters_then_sorts_highest_first_with_ties_by_id() {
        let deals = scored(vec![
            item("c", "ana", 70, 100.0, Focus::Secure),
            item("a", "bob", 30, 500.0, Focus::Nurture),
            item("b", "ana", 45, 100.0, Focus::Prioritize),
        ]);
        let ids = |q: &PriorityQuery| {
            ranked(&deals, q)
                .iter()
                .map(|i| i.external_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&PriorityQuery::default()),
            ["a", "b", "c"],
            "by value, ties by id"
        );
        let by_score = PriorityQuery {
            sort: SortKey::Score,
            ..PriorityQuery::default()
        };
        assert_eq!(ids(&by_score), ["c", "b", "a"]);
        let ana = PriorityQuery {
            filter: ListFilter {
                owner: Some("ana".into()),
                ..ListFilter::default()
            },
            grade: Some(Grade::B),
            ..PriorityQuery::default()
        };
        assert_eq!(ids(&ana), ["b"]);
        let secure = PriorityQuery {
            focus: Some(Focus::Secure),
            ..PriorityQuery::default()
        };
        assert_eq!(ids(&secure), ["c"]);
        assert_eq!(deals.facets[0], ["ana", "bob"]);
        assert_eq!(deals.facets[1], ["EMEA"]);
        assert!(deals.facets[2].is_empty());
    }
}
