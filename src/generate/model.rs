//! The generator's true win model: the exact function outcomes are drawn from, published so tests
//! (and people) can check what training and recommendations recover. `docs/generator.md` lists
//! the same numbers; keep the two in step.

use chrono::{DateTime, Utc};

use crate::domain::Opportunity;

/// Constant term; chosen so roughly 40 % of generated closed deals are won.
pub const INTERCEPT: f64 = -0.8;

/// Cycle length (days) at which the cycle term is zero, its maximum.
pub const CYCLE_OPTIMUM_DAYS: f64 = 45.0;
/// Curvature of the inverted U in log-days: term = −k·ln(days / optimum)².
pub const CYCLE_CURVATURE: f64 = 1.1;

/// Height of the saturating gain from interactions.
pub const INTERACTION_GAIN: f64 = 2.4;
/// Interactions after which ~63 % of the gain is reached.
pub const INTERACTION_SCALE: f64 = 5.0;
/// Interaction count past which every further interaction hurts (the optimum).
pub const OPTIMAL_INTERACTIONS: i64 = 18;
/// Logit lost per interaction beyond [`OPTIMAL_INTERACTIONS`].
pub const INTERACTION_DECLINE: f64 = 0.12;

/// Weight of the response-time penalty −w·ln(1 + h / scale).
pub const RESPONSE_WEIGHT: f64 = 0.9;
/// Hours that set the scale of the response-time penalty.
pub const RESPONSE_SCALE_HOURS: f64 = 4.0;
/// Response time assumed when a deal has none (no inbound message was ever answered): an
/// unanswered prospect is treated like a slow answer, not like an instant one.
pub const MISSING_RESPONSE_HOURS: f64 = 24.0;
/// The response time a rep can realistically reach; the target of the response lever.
pub const TARGET_RESPONSE_HOURS: f64 = 4.0;

/// Weight of the amount penalty −w·ln(amount / reference).
pub const AMOUNT_WEIGHT: f64 = 0.3;
/// Amount at which the amount term is zero.
pub const AMOUNT_REFERENCE: f64 = 30_000.0;

/// Logit lost per competing vendor (attribute `competitors`).
pub const COMPETITOR_WEIGHT: f64 = 0.2;

/// Best contact role; the target of the contact-role lever.
pub const TARGET_CONTACT_ROLE: &str = "decision_maker";

/// Sector offsets (unknown or missing sector: 0).
pub const SECTOR_EFFECTS: [(&str, f64); 8] = [
    ("software", 0.4),
    ("manufacturing", 0.0),
    ("retail", -0.3),
    ("finance", 0.1),
    ("healthcare", -0.2),
    ("public_sector", -0.6),
    ("energy", 0.0),
    ("logistics", 0.2),
];

/// Contact-role offsets (unknown or missing role: 0).
pub const ROLE_EFFECTS: [(&str, f64); 8] = [
    ("decision_maker", 1.4),
    ("economic_buyer", 1.1),
    ("champion", 0.6),
    ("influencer", 0.0),
    ("technical", -0.2),
    ("end_user", -1.0),
    ("procurement", -0.4),
    ("other", -1.1),
];

/// `lead_source` attribute offsets (unknown or missing: 0).
pub const LEAD_SOURCE_EFFECTS: [(&str, f64); 5] = [
    ("referral", 0.5),
    ("partner", 0.3),
    ("inbound", 0.2),
    ("event", 0.0),
    ("outbound", -0.3),
];

fn lookup(table: &[(&str, f64)], key: Option<&str>) -> f64 {
    key.and_then(|k| table.iter().find(|(name, _)| *name == k))
        .map_or(0.0, |(_, effect)| *effect)
}

/// Logistic function.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Cycle term: inverted U in log-days, zero at [`CYCLE_OPTIMUM_DAYS`]. Days below one are
/// treated as one so same-day deals do not go to −∞.
pub fn cycle_effect(days: f64) -> f64 {
    let ratio = (days.max(1.0) / CYCLE_OPTIMUM_DAYS).ln();
    -CYCLE_CURVATURE * ratio * ratio
}

/// Interaction term: saturating gain up to [`OPTIMAL_INTERACTIONS`], linear decline beyond.
pub fn interaction_effect(count: i64) -> f64 {
    let n = count.max(0) as f64;
    INTERACTION_GAIN * (1.0 - (-n / INTERACTION_SCALE).exp())
        - INTERACTION_DECLINE * (n - OPTIMAL_INTERACTIONS as f64).max(0.0)
}

/// Response-time term: −w·ln(1 + h/4), so every extra hour hurts, the first ones the most.
pub fn response_effect(hours: Option<f64>) -> f64 {
    let h = hours.unwrap_or(MISSING_RESPONSE_HOURS).max(0.0);
    -RESPONSE_WEIGHT * (1.0 + h / RESPONSE_SCALE_HOURS).ln()
}

/// Amount term: bigger deals are somewhat harder to win. The amount is read as-is whatever the
/// currency (the few non-EUR deals are of similar size).
pub fn amount_effect(amount: Option<f64>) -> f64 {
    match amount {
        Some(a) => -AMOUNT_WEIGHT * (a.max(1.0) / AMOUNT_REFERENCE).ln(),
        None => 0.0,
    }
}

/// Sector offset.
pub fn sector_effect(sector: Option<&str>) -> f64 {
    lookup(&SECTOR_EFFECTS, sector)
}

/// Contact-role offset.
pub fn role_effect(role: Option<&str>) -> f64 {
    lookup(&ROLE_EFFECTS, role)
}

/// Attribute term: `lead_source` offset minus [`COMPETITOR_WEIGHT`] per competitor.
pub fn attribute_effect(opp: &Opportunity) -> f64 {
    let lead = match opp.attributes.get("lead_source") {
        Some(crate::domain::AttributeValue::Text(t)) => lookup(&LEAD_SOURCE_EFFECTS, Some(t.as_str())),
        _ => 0.0,
    };
    let competitors = opp
        .attributes
        .get("competitors")
        .and_then(|v| v.as_number())
        .unwrap_or(0.0);
    lead - COMPETITOR_WEIGHT * competitors
}

/// The generator's true log-odds of winning `opp`, with `now` used for open deals' cycle.
///
/// Missing values contribute nothing, except a missing response time (see
/// [`MISSING_RESPONSE_HOURS`]) and a missing interaction count (read as zero interactions).
pub fn true_logit(opp: &Opportunity, now: DateTime<Utc>) -> f64 {
    let cycle = opp.cycle_days(now).map_or(0.0, cycle_effect);
    INTERCEPT
        + cycle
        + interaction_effect(opp.interaction_count.unwrap_or(0))
        + response_effect(opp.response_hours)
        + sector_effect(opp.sector.as_deref())
        + role_effect(opp.contact_role.as_ref().map(|r| r.as_str()))
        + amount_effect(opp.amount)
        + attribute_effect(opp)
}

/// The generator's true win probability, `sigmoid(true_logit)`.
pub fn true_win_probability(opp: &Opportunity, now: DateTime<Utc>) -> f64 {
    sigmoid(true_logit(opp, now))
}

/// The actionable lever whose move to the generator's optimum lifts the win probability most,
/// with that lift (a probability difference, never negative).
///
/// Levers and their targets: `response_hours` → [`TARGET_RESPONSE_HOURS`], `interaction_count` →
/// [`OPTIMAL_INTERACTIONS`], `contact_role` → [`TARGET_CONTACT_ROLE`]. Ties go to the earlier
/// lever in that order.
pub fn true_strongest_lever(opp: &Opportunity, now: DateTime<Utc>) -> (&'static str, f64) {
    let base = true_logit(opp, now);
    let p0 = sigmoid(base);
    // Each lever only changes its own additive term, so the moved logit is base − old + new.
    let moves = [
        (
            "response_hours",
            response_effect(Some(TARGET_RESPONSE_HOURS)) - response_effect(opp.response_hours),
        ),
        (
            "interaction_count",
            interaction_effect(OPTIMAL_INTERACTIONS) - interaction_effect(opp.interaction_count.unwrap_or(0)),
        ),
        (
            "contact_role",
            role_effect(Some(TARGET_CONTACT_ROLE))
                - role_effect(opp.contact_role.as_ref().map(|r| r.as_str())),
        ),
    ];
    let mut best = ("response_hours", f64::NEG_INFINITY);
    for (name, delta) in moves {
        let uplift = sigmoid(base + delta) - p0;
        if uplift > best.1 {
            best = (name, uplift);
        }
    }
    (best.0, best.1.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_is_an_inverted_u() {
        assert_eq!(cycle_effect(CYCLE_OPTIMUM_DAYS), 0.0);
        assert!(cycle_effect(10.0) < cycle_effect(30.0));
        assert!(cycle_effect(200.0) < cycle_effect(60.0));
    }

    #[test]
    fn interactions_peak_at_the_optimum() {
        let best = (0..=80).max_by(|a, b| interaction_effect(*a).total_cmp(&interaction_effect(*b)));
        assert_eq!(best, Some(OPTIMAL_INTERACTIONS));
        assert!(interaction_effect(40) < interaction_effect(OPTIMAL_INTERACTIONS));
    }

    #[test]
    fn response_time_only_hurts() {
        assert_eq!(response_effect(Some(0.0)), 0.0);
        assert!(response_effect(Some(48.0)) < response_effect(Some(4.0)));
        assert_eq!(
            response_effect(None),
            response_effect(Some(MISSING_RESPONSE_HOURS))
        );
    }
}
