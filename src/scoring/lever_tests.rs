//! Checks of the scoring rules against a model trained on generated data with known effects.

use super::*;
use crate::domain::{Opportunity, Status};
use crate::generate::true_strongest_lever;
use crate::model::explain;
use crate::training::fixtures::trained_on_generated;

fn trained() -> (ModelArtifact, Vec<Opportunity>, DateTime<Utc>) {
    let (artifact, history, now) = trained_on_generated(12_000, 3);
    let open = history.into_iter().filter(|o| o.status == Status::Open).collect();
    (artifact, open, now)
}

#[test]
fn recommendations_recover_the_generators_strongest_lever_and_contributions_add_up() {
    let (artifact, open, now) = trained();
    let config = ScoringConfig::default();
    let (mut agree, mut compared) = (0usize, 0usize);
    for opp in &open {
        let result = score(&artifact, &config, opp, now, None, RankBy::Probability, Lang::En);
        // Exact additivity of the explanation.
        let e = explain(&artifact, opp, now);
        let sum: f64 = e.contributions.iter().map(|c| c.contribution).sum();
        assert!((sum - (e.logit - e.baseline_logit)).abs() < 1e-9);
        // Every lever helps and only actionable features are proposed.
        for lever in result.next_intervention.iter().chain(&result.alternatives) {
            assert!(lever.uplift > 0.0);
            assert!(["response_hours", "interaction_count", "contact_role"].contains(&lever.feature.as_str()));
        }
        let (true_lever, true_uplift) = true_strongest_lever(opp, now);
        if let Some(next) = &result.next_intervention {
            // Only deals where the truth has a clear best lever are a fair comparison.
            if true_uplift > 0.02 {
                compared += 1;
                if next.feature == true_lever {
                    agree += 1;
                }
            }
        }
    }
    let rate = agree as f64 / compared as f64;
    eprintln!(
        "recommended lever = generator's strongest lever for {agree}/{compared} open deals ({rate:.3})"
    );
    assert!(compared > 500);
    // The same deal in French: the same numbers, French words.
    let opp = open.iter().find(|o| {
        let r = score(&artifact, &config, o, now, None, RankBy::Probability, Lang::En);
        r.next_intervention.is_some() && !r.factors.is_empty()
    });
    let opp = opp.expect("an open deal with a lever");
    let en = score(&artifact, &config, opp, now, None, RankBy::Probability, Lang::En);
    let fr = score(&artifact, &config, opp, now, None, RankBy::Probability, Lang::Fr);
    assert_eq!(en.probability, fr.probability);
    assert_eq!(en.factors.len(), fr.factors.len());
    let lever = fr
        .next_intervention
        .as_ref()
        .expect("the French answer has the same lever");
    assert!(
        lever.message.contains("fait passer la probabilité de gain de"),
        "{}",
        lever.message
    );
    assert!(lever.message.contains("\u{202F}%"), "{}", lever.message);
    assert!(
        fr.factors.iter().all(|f| !f.message.contains(" of won deals")),
        "{:?}",
        fr.factors
    );
    assert!(rate >= 0.6, "agreement {rate}");
}
