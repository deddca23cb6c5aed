//! Open deals ranked by priority: the rep's work list, shared by `GET /v1/opportunities/priority`
//! and the web UI's "My deals" page.
//!
//! Every open deal is scored (the stored score only gives the trend) into one list that a
//! [`PriorityCache`] keeps while nothing changes: the database's change stamp (bumped by every
//! write to opportunities and scores), the serving model version and at most
//! [`MAX_AGE`] of wall-clock time, since scores depend on deal age. Requests then filter and
//! sort that list in memory, so a page of a rep's deals costs microseconds instead of a scoring
//! pass over every open deal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Opportunity;
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::insights::table::{cell, opt, Table};
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
    /// Only deals whose name or account contains this text, ignoring case (see [`Search`]).
    pub search: Option<Search>,
}

/// Text searched for in deal names and accounts, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search(String);

impl Search {
    /// Longest search text, in characters.
    pub const MAX_CHARS: usize = 200;

    /// The search for `text` (trimmed); `None` when it is empty. Text longer than
    /// [`Search::MAX_CHARS`] or holding control characters is refused: no name holds them.
    pub fn parse(text: &str) -> Result<Option<Search>, SearchRefused> {
        let text = text.trim();
        if text.chars().count() > Self::MAX_CHARS {
            return Err(SearchRefused::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(SearchRefused::ControlCharacter);
        }
        Ok((!text.is_empty()).then(|| Search(text.to_lowercase())))
    }

    /// The text as given, lowercased.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn finds(&self, item: &PriorityItem) -> bool {
        let has = |field: &Option<String>| {
            field
                .as_deref()
                .is_some_and(|text| text.to_lowercase().contains(&self.0))
        };
        has(&item.name) || has(&item.account)
    }
}

/// Why a search text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchRefused {
    /// Over [`Search::MAX_CHARS`] characters.
    TooLong,
    /// A control character (line break, NUL…).
    ControlCharacter,
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
                && query.search.as_ref().is_none_or(|s| s.finds(i))
        })
        .collect();
    items.sort_by(|a, b| order(query.sort, a, b));
    items
}

/// The value a deal is sorted by.
fn sort_value(sort: SortKey, item: &PriorityItem) -> f64 {
    match sort {
        SortKey::Score => f64::from(item.score),
        SortKey::Uplift => item.next_intervention.as_ref().map_or(0.0, |n| n.uplift),
        SortKey::Value => item.expected_value.unwrap_or(0.0),
    }
}

/// The list's order: highest value first, ties by external id.
fn order(sort: SortKey, a: &PriorityItem, b: &PriorityItem) -> std::cmp::Ordering {
    sort_value(sort, b)
        .total_cmp(&sort_value(sort, a))
        .then_with(|| a.external_id.cmp(&b.external_id))
}

/// A place in a ranked list: the sort value and external id of the last deal of a page. The
/// next page starts at the first deal after it in the list's order, so a cursor stays right
/// when deals are added or removed between pages (a deal whose value moved across the cursor
/// meanwhile is seen twice or not at all, as with any keyset cursor).
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    sort: SortKey,
    value: f64,
    external_id: String,
}

impl Cursor {
    /// The cursor after `item` in a list sorted by `sort`.
    pub fn after(sort: SortKey, item: &PriorityItem) -> Cursor {
        Cursor {
            sort,
            value: sort_value(sort, item),
            external_id: item.external_id.clone(),
        }
    }

    /// The opaque text given to clients: the sort's letter, the value's bits and the id, in hex
    /// (URL-safe, no escaping needed).
    pub fn encode(&self) -> String {
        let letter = &self.sort.as_str()[..1];
        format!(
            "{letter}{:016x}{}",
            self.value.to_bits(),
            hex::encode(self.external_id.as_bytes())
        )
    }

    /// Reads a cursor given by [`Cursor::encode`] for a list sorted by `sort`; `None` for any
    /// other text, including a cursor of another sort (its place means nothing in this order).
    pub fn decode(sort: SortKey, text: &str) -> Option<Cursor> {
        let rest = text.strip_prefix(&sort.as_str()[..1])?;
        let bits = u64::from_str_radix(rest.get(..16)?, 16).ok()?;
        let id = String::from_utf8(hex::decode(rest.get(16..)?).ok()?).ok()?;
        (!id.is_empty()).then_some(Cursor {
            sort,
            value: f64::from_bits(bits),
            external_id: id,
        })
    }
}

/// Up to `limit` deals of `ranked` (sorted by `sort`) after `cursor`, and the cursor of the
/// next page when there are more.
pub fn page<'a>(
    ranked: &[&'a PriorityItem],
    sort: SortKey,
    cursor: Option<&Cursor>,
    limit: usize,
) -> (Vec<&'a PriorityItem>, Option<Cursor>) {
    let start = cursor.map_or(0, |c| {
        ranked.partition_point(|i| {
            sort_value(sort, i)
                .total_cmp(&c.value)
                .reverse()
                .then_with(|| i.external_id.as_str().cmp(&c.external_id))
                .is_le()
        })
    });
    let rest = ranked.get(start..).unwrap_or_default();
    let items: Vec<&PriorityItem> = rest.iter().take(limit).copied().collect();
    let next = (rest.len() > items.len())
        .then(|| items.last().map(|last| Cursor::after(sort, last)))
        .flatten();
    (items, next)
}

/// One rep's open deals in summary: the manager's view of a team.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OwnerSummary {
    /// The rep (owner); empty for a team's total.
    pub owner: String,
    /// Open deals.
    pub open: usize,
    /// Sum of expected values, per currency.
    pub expected_value: BTreeMap<String, f64>,
    /// Deals graded A, B, C and D.
    pub grades: [usize; 4],
    /// Deals whose focus is `prioritize`.
    pub prioritize: usize,
}

impl OwnerSummary {
    fn add(&mut self, item: &PriorityItem) {
        self.open += 1;
        if let Some(value) = item.expected_value {
            *self.expected_value.entry(item.currency.clone()).or_default() += value;
        }
        let grade = match item.grade {
            Grade::A => 0,
            Grade::B => 1,
            Grade::C => 2,
            Grade::D => 3,
        };
        self.grades[grade] += 1;
        self.prioritize += usize::from(item.focus == Focus::Prioritize);
    }
}

/// The open deals of `items` summed per owner (sorted by name), with `members` listed even
/// when they have no open deal, and the total of every item (deals without an owner included).
pub fn by_owner<'a>(
    items: impl Iterator<Item = &'a PriorityItem>,
    members: &[String],
) -> (Vec<OwnerSummary>, OwnerSummary) {
    let mut owners: BTreeMap<&str, OwnerSummary> = members
        .iter()
        .map(|m| (m.as_str(), OwnerSummary::default()))
        .collect();
    let mut total = OwnerSummary::default();
    for item in items {
        total.add(item);
        if let Some(owner) = item.owner.as_deref() {
            owners.entry(owner).or_default().add(item);
        }
    }
    let reps = owners
        .into_iter()
        .map(|(owner, summary)| OwnerSummary {
            owner: owner.to_string(),
            ..summary
        })
        .collect();
    (reps, total)
}

/// A trend as the API writes it.
fn trend_name(trend: Trend) -> &'static str {
    match trend {
        Trend::Improving => "improving",
        Trend::Steady => "steady",
        Trend::Declining => "declining",
        Trend::New => "new",
    }
}

/// The deals as a CSV table, one row per deal in list order: the text of the next
/// intervention in the list's language, amounts and expected values as plain numbers.
pub fn table(items: &[&PriorityItem]) -> Table {
    let mut table = Table::new([
        "external_id",
        "name",
        "account",
        "owner",
        "region",
        "sector",
        "amount",
        "currency",
        "expected_value",
        "score",
        "grade",
        "trend",
        "focus",
        "next_intervention",
        "uplift",
    ]);
    for i in items {
        let next = i.next_intervention.as_ref();
        table.push(vec![
            i.external_id.clone(),
            opt(i.name.as_ref()),
            opt(i.account.as_ref()),
            opt(i.owner.as_ref()),
            opt(i.region.as_ref()),
            opt(i.sector.as_ref()),
            opt(i.amount),
            i.currency.clone(),
            opt(i.expected_value.map(|v| (v * 100.0).round() / 100.0)),
            cell(i.score),
            cell(i.grade.as_str()),
            cell(trend_name(i.trend)),
            cell(i.focus.as_str()),
            opt(next.map(|n| &n.message)),
            opt(next.map(|n| n.uplift)),
        ]);
    }
    table
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

    #[test]
    fn searches_are_bounded_and_empty_ones_find_everything() {
        assert_eq!(Search::parse("  "), Ok(None));
        assert_eq!(Search::parse("a\nb"), Err(SearchRefused::ControlCharacter));
        assert_eq!(
            Search::parse(&"é".repeat(Search::MAX_CHARS + 1)),
            Err(SearchRefused::TooLong)
        );
        assert!(Search::parse(&"é".repeat(Search::MAX_CHARS)).is_ok());
    }

    #[test]
    fn cursors_walk_the_whole_list_once_and_refuse_garbage() {
        let items: Vec<PriorityItem> = (0..23)
            .map(|n| item(&format!("d{n:02}"), "ana", 50, f64::from(n % 5), Focus::Nurture))
            .collect();
        let deals = scored(items);
        for sort in [SortKey::Value, SortKey::Score, SortKey::Uplift] {
            let query = PriorityQuery {
                sort,
                ..PriorityQuery::default()
            };
            let all = ranked(&deals, &query);
            let mut seen = Vec::new();
            let mut cursor: Option<Cursor> = None;
            loop {
                let (items, next) = page(&all, sort, cursor.as_ref(), 4);
                seen.extend(items.iter().map(|i| i.external_id.clone()));
                let Some(next) = next else { break };
                let text = next.encode();
                cursor = Some(Cursor::decode(sort, &text).expect("round trip"));
                assert_eq!(cursor.as_ref(), Some(&next));
            }
            let expected: Vec<String> = all.iter().map(|i| i.external_id.clone()).collect();
            assert_eq!(seen, expected, "{sort:?}");
        }
        let last = Cursor::after(SortKey::Value, &deals.items[0]).encode();
        assert_eq!(Cursor::decode(SortKey::Score, &last), None, "another sort");
        for garbage in [
            "",
            "v",
            "v12",
            "vzzzzzzzzzzzzzzzz00",
            "v0000000000000000",
            "v0000000000000000ff",
        ] {
            assert_eq!(Cursor::decode(SortKey::Value, garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn the_table_escapes_formulas() {
        let mut evil = item("d1", "=cmd|' /C calc'!A0", 50, 10.0, Focus::Secure);
        evil.account = Some("@SUM(A1)".into());
        let csv = table(&[&evil]).to_csv().expect("csv");
        assert!(csv.starts_with("external_id,name,account,owner,"));
        assert!(csv.contains(",'@SUM(A1),'=cmd|' /C calc'!A0,"), "{csv}");
        assert!(csv.contains(",20,EUR,10,50,B,new,secure,,"), "{csv}");
    }

    #[test]
    fn owners_are_summed_with_silent_members_listed() {
        let items = [
            item("a", "ana", 70, 100.0, Focus::Prioritize),
            item("b", "ana", 30, 50.0, Focus::Nurture),
            item("c", "bob", 45, 10.0, Focus::Secure),
            PriorityItem {
                owner: None,
                ..item("d", "x", 10, 1.0, Focus::Nurture)
            },
        ];
        let (reps, total) = by_owner(items.iter(), &["cleo".to_string(), "ana".to_string()]);
        let names: Vec<&str> = reps.iter().map(|r| r.owner.as_str()).collect();
        assert_eq!(names, ["ana", "bob", "cleo"]);
        assert_eq!(reps[0].open, 2);
        assert_eq!(reps[0].grades, [1, 0, 1, 0]);
        assert_eq!(reps[0].prioritize, 1);
        assert_eq!(reps[0].expected_value.get("EUR"), Some(&150.0));
        assert_eq!(
            reps[2],
            OwnerSummary {
                owner: "cleo".into(),
                ..OwnerSummary::default()
            }
        );
        assert_eq!(total.open, 4, "a deal without owner counts in the total");
        assert_eq!(total.expected_value.get("EUR"), Some(&161.0));
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
            PriorityItem {
                name: Some("Q3 Renewal".into()),
                ..item("c", "ana", 70, 100.0, Focus::Secure)
            },
            item("a", "bob", 30, 500.0, Focus::Nurture),
            PriorityItem {
                account: Some("Acme Corp".into()),
                ..item("b", "ana", 45, 100.0, Focus::Prioritize)
            },
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
        let acme = PriorityQuery {
            search: Search::parse(" ACME ").expect("valid"),
            ..PriorityQuery::default()
        };
        assert_eq!(ids(&acme), ["b"], "by account, ignoring case");
        let by_name = PriorityQuery {
            search: Search::parse("renewal").expect("valid"),
            ..PriorityQuery::default()
        };
        assert_eq!(ids(&by_name), ["c"], "by name");
        assert_eq!(deals.facets[1], ["EMEA"]);
        assert!(deals.facets[2].is_empty());
    }
}
