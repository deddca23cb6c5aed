#!/usr/bin/env bash
# The whole training job, dealscore against scikit-learn, on one generated history in one run:
# generate DEALS deals, import them into a fresh SQLite database, then RUNS times (alternating)
# `dealscore-train` (release) and benches/training_sklearn.py (the same job with scikit-learn),
# each under /usr/bin/time -v. Prints every run, the medians and their ratios. Each dealscore run
# registers and activates its model, so from the second run on the promotion gate measures the
# previous one.
#
#   cargo build --release --bins
#   benches/training_vs_sklearn.sh                  # 1,000,000 deals, 3 runs each
#   DEALS=50000 RUNS=5 benches/training_vs_sklearn.sh
#   TRAIN_ARGS="--cv-sample 0" benches/training_vs_sklearn.sh   # alpha on the whole training part
#   ACTIVITIES=1 benches/training_vs_sklearn.sh     # with timestamped activities: dealscore-train
#                                                   # learns from snapshots at the default ages,
#                                                   # scikit-learn's job stays on final states
#                                                   # (the AUC difference then compares holdouts
#                                                   # of snapshots and of final states)
#
# scikit-learn and pandas are installed into a venv under target/ (never a dependency of
# dealscore). Environment: DEALS, RUNS, BENCH_DIR (default target/training-bench), BIN (default
# target/release), SEED (1), TRAIN_ARGS (extra dealscore-train options), SKLEARN (0 skips it),
# ACTIVITIES (1: generate and import the deals' activities too).
set -euo pipefail
cd "$(dirname "$0")/.."

DEALS=${DEALS:-1000000}
RUNS=${RUNS:-3}
SEED=${SEED:-1}
BENCH_DIR=${BENCH_DIR:-target/training-bench}
BIN=${BIN:-target/release}
SKLEARN=${SKLEARN:-1}
TRAIN_ARGS=${TRAIN_ARGS:-}
ACTIVITIES=${ACTIVITIES:-0}
VENV=target/sklearn-venv

for b in dealscore dealscore-train; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: cargo build --release --bins" >&2; exit 1; }
done
if [ "$SKLEARN" != 0 ] && [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet scikit-learn pandas
fi

mkdir -p "$BENCH_DIR"
NAME="deals-$DEALS-$SEED"
[ "$ACTIVITIES" = 1 ] && NAME="$NAME-activities"
DB="$BENCH_DIR/$NAME.sqlite"
if [ ! -f "$DB" ]; then
    CSV="$BENCH_DIR/$NAME.csv" ACTS="$BENCH_DIR/$NAME-activities.csv"
    generate=(--deals "$DEALS" --seed "$SEED" --end-date 2026-11-01 --out "$CSV")
    import=(--file "$CSV")
    if [ "$ACTIVITIES" = 1 ]; then
        generate+=(--activities-out "$ACTS")
        import+=(--activities "$ACTS")
    fi
    "$BIN/dealscore" generate "${generate[@]}" >/dev/null
    rm -f "$DB.tmp"*
    DATABASE_URL="sqlite://$DB.tmp" "$BIN/dealscore" import "${import[@]}" >/dev/null
    mv "$DB.tmp" "$DB"
    rm -f "$CSV" "$ACTS" "$DB.tmp-wal" "$DB.tmp-shm"
fi

# Runs one command under /usr/bin/time -v; prints "wall_seconds peak_mb" then the command's stdout.
# The database file is read through first, so that each job starts with it in the page cache
# (the first job of a run would otherwise pay for reading it from disk, and the second not).
measure() {
    local out="$BENCH_DIR/out.$$" times="$BENCH_DIR/time.$$"
    cat "$DB" >/dev/null
    /usr/bin/time -v -o "$times" "$@" >"$out"
    awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; w = s }
                /Maximum resident set size/ { m = $2 / 1024 }
                END { printf "%.2f %.0f\n", w, m }' "$times"
    cat "$out"
    rm -f "$out" "$times"
}

# Reads a measured run's output ($result): sets wall and mem, auc (the Python expression $1 on
# the JSON report r) and phases (the report's phase times, then the expressions $2).
parse_run() {
    local report
    read -r wall mem <<<"$(head -1 <<<"$result")"
    report=$(tail -n +2 <<<"$result")
    auc=$(python3 -c "import json,sys; r=json.load(sys.stdin); print($1)" <<<"$report")
    phases=$(python3 -c "import json,sys; r=json.load(sys.stdin); print(' '.join(f'{k} {v:.2f}' for k, v in r['phases'].items()), $2)" <<<"$report")
}

echo "$(date -u +%FT%TZ) $(git rev-parse --short HEAD) $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "history: $DEALS deals (seed $SEED), database $DB"
rust_wall=() rust_mem=() rust_auc=() py_wall=() py_mem=() py_auc=()
for run in $(seq 1 "$RUNS"); do
    models="$BENCH_DIR/models"
    rm -rf "$models"
    # --activate: a run on the data, spec and options of the active model would otherwise end
    # "unchanged" without training; forced, it trains, passes the gate and registers as before.
    # shellcheck disable=SC2086
    result=$(DATABASE_URL="sqlite://$DB" RUST_LOG=warn measure "$BIN/dealscore-train" --json \
        --activate --out "$models" $TRAIN_ARGS)
    parse_run 'r["artifact"]["holdout_metrics"]["roc_auc"]' \
        '"| alpha", r["artifact"]["cv"]["chosen_alpha"], "| cv rows", r["cv_rows"]'
    echo "run $run dealscore-train: ${wall} s, ${mem} MB, holdout AUC $auc | $phases"
    rust_wall+=("$wall") rust_mem+=("$mem") rust_auc+=("$auc")
    if [ "$SKLEARN" != 0 ]; then
        result=$(measure "$VENV/bin/python" benches/training_sklearn.py "$DB")
        parse_run 'r["holdout_auc"]' '"| alpha", r["chosen_alpha"]'
        echo "run $run scikit-learn:    ${wall} s, ${mem} MB, holdout AUC $auc | $phases"
        py_wall+=("$wall") py_mem+=("$mem") py_auc+=("$auc")
    fi
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rw=$(median "${rust_wall[@]}") rm=$(median "${rust_mem[@]}") ra=$(median "${rust_auc[@]}")
echo "median dealscore-train: ${rw} s, ${rm} MB, holdout AUC ${ra}"
if [ "$SKLEARN" != 0 ]; then
    pw=$(median "${py_wall[@]}") pm=$(median "${py_mem[@]}") pa=$(median "${py_auc[@]}")
    echo "median scikit-learn:    ${pw} s, ${pm} MB, holdout AUC ${pa}"
    awk -v rw="$rw" -v pw="$pw" -v rm="$rm" -v pm="$pm" -v ra="$ra" -v pa="$pa" 'BEGIN {
        printf "ratios dealscore/scikit-learn: wall %.2f, peak memory %.2f; holdout AUC difference %+.4f\n", rw / pw, rm / pm, ra - pa }'
fi
echo "load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
