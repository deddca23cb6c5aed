#!/bin/bash
# Serving throughput idle vs during a 1,000,000-deal training run.
# Needs: cargo build --release --bins; wrk. Writes under $BENCH_DIR (default /tmp/dealscore-bench-training).
set -euo pipefail
cd "$(dirname "$0")/.."
B=target/release/dealscore
T=target/release/dealscore-train
D=${BENCH_DIR:-/tmp/dealscore-bench-training}; rm -rf $D; mkdir -p $D
export DATABASE_URL=sqlite://$D/db.sqlite DEALSCORE_MODELS_DIR=$D/models RUST_LOG=warn
echo "generate $(date -u +%T)"
$B generate --deals 1000000 --seed 1 --end-date 2026-11-01 --out $D/deals.csv
echo "import $(date -u +%T)"
/usr/bin/time -f "import %e s %M KB" $B import --file $D/deals.csv > /dev/null
echo "initial model $(date -u +%T)"
$T --since 2026-10-01 --cv 2 --out $D/models > /dev/null
KEY=$($B keys create --name bench --role analyst 2>/dev/null)
DEALSCORE_WORKERS=2 $B serve --bind 127.0.0.1:18188 & SERVER=$!
trap "kill $SERVER" EXIT
sleep 3
echo "idle $(date -u +%T)"
KEY=$KEY wrk -t2 -c64 -d15s --latency -s benches/wrk/score_one.lua http://127.0.0.1:18188/v1/score | tee $D/idle.txt
echo "train $(date -u +%T)"
START=$(date +%s)
RUN=$(curl -s -X POST -H "Authorization: Bearer $KEY" http://127.0.0.1:18188/v1/models/train | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
# Measure while the CPU-heavy part runs (loading the deals first).
until curl -s -H "Authorization: Bearer $KEY" http://127.0.0.1:18188/v1/training-runs/$RUN | grep -q cross_validation; do sleep 0.5; done
echo "during (cross-validation) $(date -u +%T)"
KEY=$KEY wrk -t2 -c64 -d15s --latency -s benches/wrk/score_one.lua http://127.0.0.1:18188/v1/score | tee $D/during.txt
curl -s -H "Authorization: Bearer $KEY" http://127.0.0.1:18188/v1/training-runs/$RUN; echo
while curl -s -H "Authorization: Bearer $KEY" http://127.0.0.1:18188/v1/training-runs/$RUN | grep -q '"state":"running"'; do sleep 2; done
echo "run ended after $(( $(date +%s) - START )) s"
curl -s -H "Authorization: Bearer $KEY" http://127.0.0.1:18188/v1/training-runs/$RUN > $D/run.json; cat $D/run.json | head -c 1500; echo
