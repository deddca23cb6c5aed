//! Throughput on one core of predict(), explain() and the whole score() of the API (probability,
//! grade, factor sentences, counterfactual levers and the next intervention): trains a model
//! with the default spec on synthetic deals, then scores 1,000 deals per iteration.
//!
//! `cargo bench --bench predict`

use chrono::{Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dealscore::domain::{ContactRole, Deal, ExternalId, Opportunity, Status};
use dealscore::features::FeatureSpec;
use dealscore::i18n::Lang;
use dealscore::model::{explain, predict};
use dealscore::scoring::{score, RankBy, ScoringConfig};
use dealscore::training::{train, SplitKind, TrainOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// The allocator of the `dealscore` binary (src/main.rs), so the figures are those of the service;
// docs/performance.md ("Allocator") gives them with the system allocator too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn deals(n: usize) -> Vec<Opportunity> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let response: f64 = rng.gen_range(0.5..120.0);
            let interactions: i64 = rng.gen_range(0..30);
            let role = ["decision_maker", "influencer", "end_user"][i % 3];
            let z = 0.5 - 0.03 * response + 0.08 * interactions as f64;
            let won = rng.gen::<f64>() < 1.0 / (1.0 + (-z).exp());
            let created = start + Duration::days((i % 600) as i64);
            Opportunity {
                external_id: ExternalId::parse(&format!("D-{i}")).expect("test ids are valid"),
                deal: Deal {
                    name: None,
                    account: None,
                    sector: Some(["retail", "banking", "energy", "public"][i % 4].to_owned()),
                    region: Some(["north", "south"][i % 2].to_owned()),
                    owner: None,
                    contact_role: ContactRole::normalise(role),
                    amount: Some(rng.gen_range(1_000.0..100_000.0)),
                    currency: "EUR".into(),
                    stage: None,
                    status: if won { Status::Won } else { Status::Lost },
                    created_at: Some(created),
                    closed_at: Some(created + Duration::days(rng.gen_range(5..200))),
                    interaction_count: Some(interactions),
                    response_hours: if i % 7 == 0 { None } else { Some(response) },
                    last_activity_at: None,
                    attributes: Default::default(),
                    cycle_days: None,
                },
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let history = deals(3_000);
    let options = TrainOptions {
        split: SplitKind::Time,
        now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        ..TrainOptions::default()
    };
    // `check` consumes the options: keep the instant the bench scores at.
    let now = options.now;
    let trained = train(
        &history,
        &FeatureSpec::default_spec(),
        &options.check().expect("bench options are valid"),
        &mut |_| {},
    )
    .expect("train");
    let artifact = trained.artifact;
    let batch: Vec<Opportunity> = history.into_iter().take(1_000).collect();
    let mut group = c.benchmark_group("score_1000_deals");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("predict", |b| {
        b.iter(|| batch.iter().map(|d| predict(&artifact, d, now)).sum::<f64>())
    });
    group.bench_function("explain", |b| {
        b.iter(|| {
            batch
                .iter()
                .map(|d| explain(&artifact, d, now).logit)
                .sum::<f64>()
        })
    });
    // What POST /v1/score computes per opportunity (before JSON): the throughput target's "scoring with
    // explanation and recommendation".
    let config = ScoringConfig::default();
    group.bench_function("score_with_recommendation", |b| {
        b.iter(|| {
            batch
                .iter()
                .map(|d| {
                    let result = score(
                        &artifact,
                        &config,
                        d,
                        now,
                        Some(40),
                        RankBy::Probability,
                        Lang::En,
                    );
                    result.probability + result.alternatives.len() as f64
                })
                .sum::<f64>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
