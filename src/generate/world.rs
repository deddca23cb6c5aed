//! The synthetic sales organisation (regions, sectors, reps, accounts) and the per-deal draw.
//!
//! Every deal gets its own random stream derived from `(seed, deal index)`, so deal *i* is the
//! same whether deals are collected in memory or streamed to CSV, and generation needs no state
//! that grows with the number of deals.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::contracts::{self, DealType};
use super::model::{sigmoid, true_logit};
use super::GeneratorConfig;
use crate::domain::{
    self, derive_interactions, Activity, ActivityDirection, ActivityKind, AttributeValue, ContactRole,
    ExternalId, Opportunity, Status,
};

const DAY: i64 = 86_400;
/// How far back closed deals' creation dates reach.
const HISTORY_DAYS: i64 = 730;
/// How far back open deals' creation dates reach (an older open deal would be stale in a CRM).
const OPEN_WINDOW_DAYS: i64 = 150;

/// Sectors with their share of accounts and median deal amount.
pub(crate) const SECTORS: [(&str, f64, f64); 8] = [
    ("software", 0.20, 30_000.0),
    ("manufacturing", 0.16, 55_000.0),
    ("retail", 0.14, 18_000.0),
    ("finance", 0.12, 45_000.0),
    ("healthcare", 0.10, 35_000.0),
    ("public_sector", 0.08, 60_000.0),
    ("energy", 0.08, 50_000.0),
    ("logistics", 0.12, 22_000.0),
];
/// Log-scale spread of amounts around the sector median.
const AMOUNT_SIGMA: f64 = 0.9;

/// A non-EUR currency used in a region and the share of the region's deals in it.
type ForeignCurrency = Option<(&'static str, f64)>;

/// Regions with their share of accounts and their non-EUR currency, if any.
const REGIONS: [(&str, f64, ForeignCurrency); 6] = [
    ("EMEA-North", 0.18, Some(("GBP", 0.15))),
    ("EMEA-South", 0.16, None),
    ("DACH", 0.26, None),
    ("NA-East", 0.14, Some(("USD", 0.25))),
    ("NA-West", 0.10, Some(("USD", 0.25))),
    ("APAC", 0.16, None),
];

/// Share of each known contact role (same order as [`ContactRole::KNOWN`]).
const ROLE_WEIGHTS: [f64; 8] = [0.15, 0.10, 0.15, 0.15, 0.15, 0.15, 0.08, 0.07];

/// `lead_source` values and their shares.
const LEAD_SOURCES: [(&str, f64); 5] = [
    ("referral", 0.15),
    ("partner", 0.10),
    ("inbound", 0.30),
    ("event", 0.15),
    ("outbound", 0.30),
];
/// Shares of 0, 1, 2, 3 and 4 competitors.
const COMPETITOR_WEIGHTS: [f64; 5] = [0.25, 0.35, 0.25, 0.10, 0.05];

const REP_NAMES: [&str; 30] = [
    "anna", "ben", "chiara", "david", "elena", "felix", "greta", "hugo", "ines", "jonas", "karin", "luca",
    "maria", "niko", "olga", "pablo", "quinn", "rosa", "stefan", "tara", "ulla", "victor", "wen", "xavier",
    "yara", "zoe", "amir", "birgit", "carlos", "dana",
];
const ACCOUNT_STEMS: [&str; 40] = [
    "Nord", "Alpen", "Blue", "Silver", "Oak", "River", "Stone", "Bright", "Iron", "Green", "Sun", "Star",
    "Cedar", "Falcon", "Harbor", "Summit", "Pioneer", "Atlas", "Vector", "Orbit", "Lumen", "Delta", "Nova",
    "Polar", "Crest", "Maple", "Granite", "Coral", "Swift", "Aurora", "Meridian", "Pinnacle", "Vertex",
    "Horizon", "Beacon", "Sierra", "Tundra", "Zenith", "Apex", "Cobalt",
];
const ACCOUNT_TAILS: [&str; 30] = [
    "wind", "tech", "works", "field", "line", "point", "gate", "bridge", "core", "logic", "wave", "path",
    "forge", "labs", "systems", "data", "trade", "mark", "port", "cloud", "med", "power", "foods", "motion",
    "soft", "metrics", "capital", "care", "grid", "freight",
];
const LEGAL_FORMS: [&str; 6] = ["GmbH", "Ltd", "Inc", "SA", "AG", "BV"];
const PRODUCTS: [&str; 8] = [
    "Platform licence",
    "Renewal",
    "Expansion",
    "Pilot",
    "Support contract",
    "Integration project",
    "Analytics add-on",
    "Upgrade",
];

struct Rep {
    name: String,
    /// Median hours this rep takes to answer; reps differ a lot, which is what makes response
    /// time vary between deals.
    response_median_hours: f64,
    /// Multiplier on how many touchpoints this rep's deals get.
    activity_level: f64,
}

struct Account {
    name: String,
    sector: usize,
    region: usize,
}

/// One generated deal: the opportunity and its activities in time order.
pub(crate) struct Deal {
    pub opportunity: Opportunity,
    pub activities: Vec<Activity>,
    /// Its stage changes up to its close or the end of the history, in time order: the field
    /// history a CRM would export (empty unless activities were asked for).
    pub stage_changes: Vec<super::StageChange>,
    /// How an open deal eventually ends (`None` for a closed deal).
    pub eventual: Option<super::EventualOutcome>,
    /// Index of its account in the world's accounts.
    pub account_index: usize,
}

/// The fixed population deals are drawn from, plus the per-deal random streams.
pub(crate) struct World {
    reps: Vec<Rep>,
    reps_by_region: Vec<Vec<usize>>,
    accounts: Vec<Account>,
    deal_rng: ChaCha8Rng,
    seed: u64,
    end: DateTime<Utc>,
    end_s: i64,
    open_fraction: f64,
    shift: super::Shift,
    id_prefix: String,
}

/// Uniform draw in `[0, 1)`.
pub(super) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    rng.gen::<f64>()
}

/// Standard normal draw (Box–Muller); avoids a dependency on rand_distr.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - unit(rng); // (0, 1], so ln is finite
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Poisson draw: Knuth's method for small means, a rounded normal for large ones.
fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> i64 {
    if mean < 30.0 {
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = unit(rng);
        while p > limit {
            k += 1;
            p *= unit(rng);
        }
        k
    } else {
        (mean + mean.sqrt() * normal(rng)).round().max(0.0) as i64
    }
}

/// Index drawn with the given (not necessarily normalised) weights.
pub(super) fn pick(rng: &mut ChaCha8Rng, weights: impl IntoIterator<Item = f64> + Clone) -> usize {
    let total: f64 = weights.clone().into_iter().sum();
    let mut target = unit(rng) * total;
    let mut last = 0;
    for (i, w) in weights.into_iter().enumerate() {
        if target < w {
            return i;
        }
        target -= w;
        last = i;
    }
    last
}

fn timestamp(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

impl World {
    /// Builds the reps and accounts for `config` (depends on seed and deal count only).
    pub(crate) fn new(config: &GeneratorConfig) -> World {
        // Separate stream families for the population and the deals so adding a rep attribute
        // does not reshuffle every deal.
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(u64::MAX);
        let mut reps = Vec::with_capacity(REP_NAMES.len());
        let mut reps_by_region = vec![Vec::new(); REGIONS.len()];
        for (i, first) in REP_NAMES.iter().enumerate() {
            // Round-robin keeps every region staffed (5 reps each).
            let region = i % REGIONS.len();
            reps_by_region[region].push(i);
            reps.push(Rep {
                name: format!("{first}.{}", (b'a' + (i * 7 % 26) as u8) as char),
                response_median_hours: 7.0 * (0.8 * normal(&mut rng)).exp(),
                activity_level: 0.7 + 0.6 * unit(&mut rng),
            });
        }
        let account_count = (config.deals / 4).clamp(20, 4000);
        let accounts = (0..account_count)
            .map(|i| {
                let stem = ACCOUNT_STEMS[i % ACCOUNT_STEMS.len()];
                let tail = ACCOUNT_TAILS[(i / ACCOUNT_STEMS.len()) % ACCOUNT_TAILS.len()];
                let legal = LEGAL_FORMS[(i / 7) % LEGAL_FORMS.len()];
                let round = i / (ACCOUNT_STEMS.len() * ACCOUNT_TAILS.len());
                // Stem × tail gives 1,200 distinct names; beyond that a number keeps them unique.
                let name = if round == 0 {
                    format!("{stem}{tail} {legal}")
                } else {
                    format!("{stem}{tail} {} {legal}", round + 1)
                };
                Account {
                    name,
                    sector: pick(&mut rng, SECTORS.iter().map(|s| s.1)),
                    region: pick(&mut rng, REGIONS.iter().map(|r| r.1)),
                }
            })
            .collect();
        World {
            reps,
            reps_by_region,
            accounts,
            deal_rng: ChaCha8Rng::seed_from_u64(config.seed),
            seed: config.seed,
            end: config.end,
            end_s: config.end.timestamp(),
            open_fraction: config.open_fraction.clamp(0.0, 1.0),
            shift: config.shift,
            id_prefix: config.id_prefix.clone(),
        }
    }

    /// Whether deal `index` is open: exactly `open_fraction` of any prefix of deals, spread evenly.
    fn is_open(&self, index: usize) -> bool {
        let f = self.open_fraction;
        ((index as f64 + 1.0) * f).floor() > (index as f64 * f).floor()
    }

    /// Generates deal `index` (0-based); `with_activities` only controls whether the activity
    /// records are returned — the measures are derived from them either way.
    pub(crate) fn deal(&self, index: usize, with_activities: bool) -> Deal {
        self.deal_under(index, with_activities, self.shift)
    }

    /// [`World::deal`] under `shift` instead of the world's own.
    fn deal_under(&self, index: usize, with_activities: bool, shift: super::Shift) -> Deal {
        let mut rng = self.deal_rng.clone();
        rng.set_stream(index as u64);
        let open = self.is_open(index);
        let deal_no = index + 1;
        let external_id = ExternalId::numbered(&self.id_prefix, deal_no);

        let draws = contracts::draws(self.seed, index);
        let follow_up = self.follow_up(index, open, &draws);
        // u² skews towards low indices, so some accounts are big repeat customers.
        let drawn =
            ((unit(&mut rng).powi(2) * self.accounts.len() as f64) as usize).min(self.accounts.len() - 1);
        let account_index = follow_up.map_or(drawn, |f| f.account);
        let account = &self.accounts[account_index];
        let home_reps = &self.reps_by_region[account.region];
        let rep_index = if unit(&mut rng) < 0.85 && !home_reps.is_empty() {
            home_reps[(unit(&mut rng) * home_reps.len() as f64) as usize % home_reps.len()]
        } else {
            (unit(&mut rng) * self.reps.len() as f64) as usize % self.reps.len()
        };
        let rep = &self.reps[rep_index];
        let role = ContactRole::KNOWN[pick(&mut rng, ROLE_WEIGHTS)];
        let (sector, _, median_amount) = SECTORS[account.sector];
        let amount = ((median_amount * (AMOUNT_SIGMA * normal(&mut rng)).exp() * shift.amount_factor) / 10.0)
            .round()
            .max(50.0)
            * 10.0;
        let (region, _, foreign) = REGIONS[account.region];
        let currency = match foreign {
            Some((code, share)) if unit(&mut rng) < share => code,
            _ => "EUR",
        };
        let lead_source = LEAD_SOURCES[pick(&mut rng, LEAD_SOURCES.iter().map(|l| l.1))].0;
        let competitors = pick(&mut rng, COMPETITOR_WEIGHTS);
        let product = PRODUCTS[(unit(&mut rng) * PRODUCTS.len() as f64) as usize % PRODUCTS.len()];

        // Dates in whole seconds so the CSV round trip is exact.
        let (created_s, window_end_s) = if open {
            let age = 3600 + (unit(&mut rng) * (OPEN_WINDOW_DAYS * DAY - 3600) as f64) as i64;
            (self.end_s - age, self.end_s)
        } else {
            let cycle_days = (CYCLE_MEDIAN_DAYS * (CYCLE_SIGMA * normal(&mut rng)).exp()).clamp(1.0, 600.0);
            let cycle_s = (cycle_days * DAY as f64) as i64;
            let earliest = self.end_s - HISTORY_DAYS * DAY;
            let latest = self.end_s - cycle_s;
            let created = earliest + (unit(&mut rng) * (latest - earliest) as f64) as i64;
            (created, created + cycle_s)
        };
        // A renewal or upsell opens when its parent's contract calls for it, with the cycle drawn.
        let (created_s, window_end_s) = match follow_up {
            Some(f) if open => (f.created_s, window_end_s),
            Some(f) => {
                let close = (f.created_s + window_end_s - created_s)
                    .min(f.latest_close_s)
                    .min(self.end_s);
                (f.created_s, close.max(f.created_s))
            }
            None => (created_s, window_end_s),
        };

        // An open deal lives on past the end of the history: it closes after a cycle drawn like a
        // closed deal's, given that it has lasted this long, and a renewal still by its latest
        // date. Its whole life is drawn the same way as a closed deal's; the export shows the part
        // before the end, and the truth says how it ends.
        let close_s = if open {
            let age_days = (window_end_s - created_s) as f64 / DAY as f64;
            let cycle_s = (cycle_longer_than(&mut rng, age_days) * DAY as f64) as i64;
            let close = follow_up.map_or(created_s + cycle_s, |f| {
                (created_s + cycle_s).min(f.latest_close_s)
            });
            close.max(self.end_s + 3600)
        } else {
            window_end_s
        };
        let window_days = (window_end_s - created_s) as f64 / DAY as f64;
        let life_days = (close_s - created_s) as f64 / DAY as f64;
        let mean_touches = rep.activity_level * (2.0 + 6.0 * (1.0 + life_days / 10.0).ln());
        let touches = poisson(&mut rng, mean_touches);
        let deal_response_hours =
            rep.response_median_hours * (0.5 * normal(&mut rng)).exp() * shift.response_factor;
        let life = self.timeline(&mut rng, touches, created_s, close_s, deal_response_hours);
        let events: Vec<_> = life.iter().filter(|e| e.2 <= window_end_s).copied().collect();
        let pairs: Vec<_> = events.iter().map(|(d, _, t)| (*d, timestamp(*t))).collect();
        let derived = derive_interactions(&pairs);

        let mut attributes = BTreeMap::new();
        attributes.insert(
            "lead_source".to_owned(),
            AttributeValue::Text(lead_source.to_owned()),
        );
        attributes.insert(
            "competitors".to_owned(),
            AttributeValue::Number(competitors as f64),
        );
        let deal_type = follow_up.map_or(DealType::New, |f| f.kind);
        attributes.insert(
            "deal_type".to_owned(),
            AttributeValue::Text(deal_type.as_str().to_owned()),
        );
        if deal_type != DealType::Upsell {
            attributes.insert(
                "contract_months".to_owned(),
                AttributeValue::Number(f64::from(draws.months)),
            );
        }
        let mut opportunity = Opportunity {
            external_id,
            deal: domain::Deal {
                name: Some(format!("{} - {product}", account.name)),
                account: Some(account.name.clone()),
                sector: Some(sector.to_owned()),
                region: Some(region.to_owned()),
                owner: Some(rep.name.clone()),
                contact_role: ContactRole::normalise(role),
                amount: Some(amount),
                currency: currency.to_owned(),
                stage: None,
                status: if open { Status::Open } else { Status::Lost },
                created_at: Some(timestamp(created_s)),
                closed_at: (!open).then(|| timestamp(window_end_s)),
                interaction_count: Some(derived.interaction_count),
                response_hours: derived.response_hours,
                last_activity_at: derived.last_activity_at,
                attributes,
                cycle_days: None,
            },
        };
        let (stage_pace, eventual) = if open {
            let pace = normal(&mut rng);
            opportunity.stage = Some(open_stage(window_days, pace).to_owned());
            // The finished deal: its whole life's interactions and its close. The outcome is
            // drawn from it exactly as a closed deal's is.
            let all_pairs: Vec<_> = life.iter().map(|(d, _, t)| (*d, timestamp(*t))).collect();
            let whole = derive_interactions(&all_pairs);
            let mut finished = opportunity.clone();
            finished.closed_at = Some(timestamp(close_s));
            finished.interaction_count = Some(whole.interaction_count);
            finished.response_hours = whole.response_hours;
            finished.last_activity_at = whole.last_activity_at;
            let probability = sigmoid(true_logit(&finished, timestamp(close_s)));
            let won = unit(&mut rng) < probability;
            let eventual = super::EventualOutcome {
                status: if won { Status::Won } else { Status::Lost },
                closed_at: timestamp(close_s),
                true_probability: probability,
                final_interaction_count: whole.interaction_count,
                final_response_hours: whole.response_hours,
            };
            (pace, Some(eventual))
        } else {
            // The outcome comes from the finished row itself, so true_logit on the row is
            // exactly the probability the outcome was drawn with.
            let won = unit(&mut rng) < sigmoid(true_logit(&opportunity, self.end));
            opportunity.status = if won { Status::Won } else { Status::Lost };
            opportunity.stage = Some(if won { "closed_won" } else { "closed_lost" }.to_owned());
            // Drawn last, so a closed deal's other fields are those drawn without a stage history.
            (normal(&mut rng), None)
        };
        let drawn = super::competition::draw(
            &self.deal_rng,
            index,
            competitors,
            opportunity.status,
            opportunity.sector.as_deref(),
            opportunity.amount,
        );
        for (name, value) in [
            ("competitor", drawn.competitor),
            ("loss_reason", drawn.loss_reason),
        ] {
            if let Some(v) = value {
                opportunity
                    .attributes
                    .insert(name.to_owned(), AttributeValue::Text(v.to_owned()));
            }
        }

        let activities = if with_activities {
            events
                .iter()
                .enumerate()
                .map(|(k, (direction, kind, t))| Activity {
                    id: Some(format!("A-{deal_no:07}-{:03}", k + 1)),
                    kind: *kind,
                    direction: *direction,
                    occurred_at: timestamp(*t),
                })
                .collect()
        } else {
            Vec::new()
        };
        let stage_changes = if with_activities {
            stage_changes(created_s, window_end_s, stage_pace, opportunity.stage.as_deref())
        } else {
            Vec::new()
        };
        Deal {
            opportunity,
            activities,
            stage_changes,
            eventual,
            account_index,
        }
    }

    /// What deal `index` follows up of its parent (deal `index − 1`, regenerated: it is
    /// even-numbered, so never a follow-up itself), if anything.
    fn follow_up(
        &self,
        index: usize,
        open: bool,
        draws: &contracts::ContractDraws,
    ) -> Option<contracts::FollowUp> {
        if draws.wish == DealType::New || index == 0 {
            return None;
        }
        // Who renews is decided in the unshifted world: a shift changes what deals measure, not
        // which accounts buy, so the open deals' sectors and regions stay those of the same world
        // (under a shift a renewal's parent may itself be recorded lost).
        let parent = self.deal_under(index - 1, false, super::Shift::default());
        if parent.opportunity.status != Status::Won {
            return None;
        }
        let close = parent.opportunity.closed_at?.timestamp();
        let months = contracts::draws(self.seed, index - 1).months;
        contracts::follow_up(
            draws,
            parent.account_index,
            close,
            months,
            (open, OPEN_WINDOW_DAYS * DAY),
            self.end_s,
        )
    }

    /// Lays out `touches` activities between `start_s` and `end_s` (inclusive), sorted by time.
    ///
    /// Touches come as conversation units: an inbound message answered after a wait around
    /// `response_hours`, or a single outbound touch. The measures are later derived from the
    /// result, so overlapping units are fine — they just shape the derived response time.
    fn timeline(
        &self,
        rng: &mut ChaCha8Rng,
        touches: i64,
        start_s: i64,
        end_s: i64,
        response_hours: f64,
    ) -> Vec<(ActivityDirection, ActivityKind, i64)> {
        let mut events = Vec::with_capacity(touches.max(0) as usize);
        let span = (end_s - start_s).max(0) as f64;
        let mut remaining = touches;
        while remaining > 0 {
            let at = start_s + (unit(rng) * span) as i64;
            if remaining >= 2 && unit(rng) < INBOUND_PAIR_SHARE {
                let inbound_kind = if unit(rng) < 0.7 {
                    ActivityKind::Email
                } else {
                    ActivityKind::Call
                };
                let wait_hours = response_hours * (0.6 * normal(rng)).exp();
                let wait_s = ((wait_hours * 3600.0) as i64).max(60);
                events.push((ActivityDirection::Inbound, inbound_kind, at));
                events.push((
                    ActivityDirection::Outbound,
                    reply_kind(rng),
                    (at + wait_s).min(end_s),
                ));
                remaining -= 2;
            } else {
                events.push((ActivityDirection::Outbound, touch_kind(rng), at));
                remaining -= 1;
            }
        }
        // Stable sort keeps an inbound message before its same-second answer.
        events.sort_by_key(|e| e.2);
        events
    }
}

/// Where a deal of `age_days` stands when its pace (a standard normal draw, fixed for the deal)
/// is `pace`: older deals have usually progressed further. Stages carry no outcome of their own.
fn open_stage(age_days: f64, pace: f64) -> &'static str {
    let progress = age_days / OPEN_WINDOW_DAYS as f64 + 0.3 * pace;
    if progress < STAGE_STEPS[0].0 {
        "qualification"
    } else if progress < STAGE_STEPS[1].0 {
        STAGE_STEPS[0].1
    } else {
        STAGE_STEPS[1].1
    }
}

/// The progress at which a deal moves on, and the stage it moves to (see [`open_stage`]).
const STAGE_STEPS: [(f64, &str); 2] = [(0.25, "proposal"), (0.6, "negotiation")];

/// The stage history of a deal created at `created_s` that was open until `open_until_s`: its
/// first stage at creation, each step [`open_stage`] takes before `open_until_s`, and, when it
/// has closed, its final stage `final_stage` at the close.
fn stage_changes(
    created_s: i64,
    open_until_s: i64,
    pace: f64,
    final_stage: Option<&str>,
) -> Vec<super::StageChange> {
    let closing = final_stage.filter(|stage| stage.starts_with("closed_"));
    let mut changes = vec![super::StageChange {
        stage: open_stage(0.0, pace).to_owned(),
        at: timestamp(created_s),
    }];
    for (progress, stage) in STAGE_STEPS {
        // The first second at which `age / window + 0.3 pace` has reached the step.
        let at_days = (progress - 0.3 * pace) * OPEN_WINDOW_DAYS as f64;
        let at = created_s + (at_days * DAY as f64).ceil() as i64;
        // A closed deal's last second belongs to its closing stage.
        let before_end = if closing.is_some() {
            at < open_until_s
        } else {
            at <= open_until_s
        };
        if at > created_s && before_end {
            changes.push(super::StageChange {
                stage: stage.to_owned(),
                at: timestamp(at),
            });
        }
    }
    if let Some(stage) = closing {
        // A deal closed the second it was created has no open stage to record.
        changes.retain(|c| c.at < timestamp(open_until_s));
        changes.push(super::StageChange {
            stage: stage.to_owned(),
            at: timestamp(open_until_s),
        });
    }
    changes
}

/// A closed deal's cycle in days, given that it has already lasted `age_days`: the cycle
/// distribution of closed deals (log-normal around [`CYCLE_MEDIAN_DAYS`]) above that age, so
/// open deals end the way closed deals of their age did.
fn cycle_longer_than(rng: &mut ChaCha8Rng, age_days: f64) -> f64 {
    let lower = (age_days.max(1.0) / CYCLE_MEDIAN_DAYS).ln() / CYCLE_SIGMA;
    let z = normal_above(rng, lower);
    (CYCLE_MEDIAN_DAYS * (CYCLE_SIGMA * z).exp()).clamp(age_days + 1.0 / 24.0, 600.0_f64.max(age_days + 1.0))
}

/// A standard normal draw conditioned on exceeding `lower`: plain rejection below the mean,
/// Robert's exponential proposal above it (acceptance above 75 % at any bound). Both loops end
/// with probability one; the cap only guards against a broken random source.
fn normal_above(rng: &mut ChaCha8Rng, lower: f64) -> f64 {
    const TRIES: usize = 10_000;
    if lower <= 0.0 {
        for _ in 0..TRIES {
            let z = normal(rng);
            if z > lower {
                return z;
            }
        }
        return lower.abs();
    }
    let rate = (lower + (lower * lower + 4.0).sqrt()) / 2.0;
    for _ in 0..TRIES {
        let z = lower - (1.0 - unit(rng)).ln() / rate;
        if unit(rng) <= (-(z - rate) * (z - rate) / 2.0).exp() {
            return z;
        }
    }
    lower
}

/// Median closed-deal cycle in days; matches the model's optimum so most deals are near it.
const CYCLE_MEDIAN_DAYS: f64 = 45.0;
/// Log-scale spread of cycle lengths.
const CYCLE_SIGMA: f64 = 0.75;
/// Chance a unit is an inbound message plus its answer rather than a lone outbound touch.
const INBOUND_PAIR_SHARE: f64 = 0.45;

fn reply_kind(rng: &mut ChaCha8Rng) -> ActivityKind {
    [
        ActivityKind::Email,
        ActivityKind::Call,
        ActivityKind::Meeting,
        ActivityKind::Demo,
    ][pick(rng, [0.55, 0.30, 0.10, 0.05])]
}

fn touch_kind(rng: &mut ChaCha8Rng) -> ActivityKind {
    [
        ActivityKind::Email,
        ActivityKind::Call,
        ActivityKind::Meeting,
        ActivityKind::Demo,
    ][pick(rng, [0.45, 0.25, 0.18, 0.12])]
}
