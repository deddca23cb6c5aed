//! Times the logistic fit on a synthetic binned one-hot design (default 1,000,000 rows × 56
//! columns: 7 features × 8 bins), the shape of a large CRM history.
//!
//! `cargo bench --bench fit` (rows: `FIT_BENCH_ROWS`). The design's bin codes and outcomes are
//! written to `target/fit-bench/design.csv` so `benches/sklearn_fit.py` fits the very same data.

use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion};
use dealscore::training::fit::{fit_large, fit_logistic};
use dealscore::training::metrics::roc_auc;
use ndarray::{Array2, ShapeBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FEATURES: usize = 7;
const BINS: usize = 8;
const ALPHA: f64 = 1.0;
const MAX_ITERATIONS: u64 = 200;

fn synthetic(rows: usize) -> (Vec<[u8; FEATURES]>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut codes = Vec::with_capacity(rows);
    let mut won = Vec::with_capacity(rows);
    for _ in 0..rows {
        let mut row = [0u8; FEATURES];
        let mut z = -0.4;
        for (f, slot) in row.iter_mut().enumerate() {
            let b = rng.gen_range(0..BINS);
            *slot = b as u8;
            // Monotone effects of varying strength per feature.
            z += (b as f64 - 3.5) * 0.12 * (f + 1) as f64 / FEATURES as f64;
        }
        codes.push(row);
        won.push(rng.gen::<f64>() < 1.0 / (1.0 + (-z).exp()));
    }
    (codes, won)
}

fn design(codes: &[[u8; FEATURES]]) -> Array2<f64> {
    let mut x = Array2::<f64>::zeros((codes.len(), FEATURES * BINS).f());
    for (r, row) in codes.iter().enumerate() {
        for (f, b) in row.iter().enumerate() {
            x[[r, f * BINS + *b as usize]] = 1.0;
        }
    }
    x
}

fn write_csv(codes: &[[u8; FEATURES]], won: &[bool]) -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fit-bench");
    std::fs::create_dir_all(&dir)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("design.csv"))?);
    let header: Vec<String> = (0..FEATURES).map(|f| format!("f{f}")).collect();
    writeln!(out, "{},won", header.join(","))?;
    for (row, w) in codes.iter().zip(won) {
        for b in row {
            write!(out, "{b},")?;
        }
        writeln!(out, "{}", u8::from(*w))?;
    }
    out.flush()
}

fn bench(c: &mut Criterion) {
    let rows = std::env::var("FIT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (codes, won) = synthetic(rows);
    if let Err(e) = write_csv(&codes, &won) {
        eprintln!("could not write design.csv: {e}");
    }
    let x = design(&codes);
    let cold = fit_logistic(&x, &won, ALPHA, None, MAX_ITERATIONS).expect("fit");
    let warm = fit_large(&x, &won, ALPHA, MAX_ITERATIONS).expect("fit");
    // In-sample ROC AUC: the same data scikit-learn fits (benches/sklearn_fit.py prints its own),
    // so the two solvers' solutions can be compared on it.
    let auc = |fit: &dealscore::training::fit::LinearFit| roc_auc(&fit.probabilities(&x), &won);
    eprintln!(
        "rows {rows}: cold fit gradient norm {:.3e} (tol {:.3e}, converged {}); \
         warm-started {:.3e} (converged {}); intercept {:.6} vs {:.6}; ROC AUC {:.6} vs {:.6}",
        cold.convergence.gradient_norm,
        cold.convergence.gradient_tolerance,
        cold.convergence.converged,
        warm.convergence.gradient_norm,
        warm.convergence.converged,
        cold.intercept,
        warm.intercept,
        auc(&cold),
        auc(&warm)
    );
    let mut group = c.benchmark_group(format!("fit_{rows}x{}", FEATURES * BINS));
    group.sample_size(10);
    group.bench_function("linfa_cold_start", |b| {
        b.iter(|| fit_logistic(&x, &won, ALPHA, None, MAX_ITERATIONS).expect("fit"))
    });
    group.bench_function("linfa_subsample_warm_start", |b| {
        b.iter(|| fit_large(&x, &won, ALPHA, MAX_ITERATIONS).expect("fit"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
