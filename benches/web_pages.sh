#!/usr/bin/env bash
# Web UI page times on a large database: signs in a rep and an analyst with curl, requests each
# page once (cold: caches empty after start), then RUNS more times and prints the median and the
# slowest of those (warm) per page. Usage:
#   DATABASE_URL=sqlite:///tmp/ui1m/db.sqlite benches/web_pages.sh [RUNS]
# The database must hold opportunities and an active model (see BENCHMARKS.md for how it is built).
# With WARM=0 the server starts with DEALSCORE_WARM_CACHES=false, so "cold" is a first view that
# builds what it needs; by default the script waits until startup warming is done (and prints how
# long it took), so "cold" is the first view after warming.
set -euo pipefail
RUNS=${1:-21}
BIN=${BIN:-target/release/dealscore}
PORT=${PORT:-8097}
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
trap 'kill "${SERVER:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

key() { "$BIN" keys create --name "bench-$1-$$" --role "$@"; }
ANALYST_KEY=$(key analyst)

WARM=${WARM:-1}
WARM_CACHES=$([ "$WARM" = 1 ] && echo true || echo false)
STARTED=$(date +%s.%N)
DEALSCORE_BIND="127.0.0.1:$PORT" DEALSCORE_DRIFT_REFRESH_SECS=0 DEALSCORE_WARM_CACHES=$WARM_CACHES \
  RUST_LOG=warn,dealscore::warmup=info "$BIN" serve >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.2; done
if [ "$WARM" = 1 ]; then
  until grep -q "in-memory views warmed" "$WORK/serve.log"; do sleep 0.5; done
  printf 'startup warming done %.1f s after start\n' "$(echo "$(date +%s.%N) - $STARTED" | bc)"
fi

sign_in() { # jar key
  local form csrf
  form=$(curl -s -c "$1" -b "$1" "$BASE/login")
  csrf=$(printf '%s' "$form" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"//')
  curl -s -c "$1" -b "$1" -o /dev/null -X POST --data-urlencode "api_key=$2" -d "csrf=$csrf" "$BASE/login"
}
# A rep key sees one owner's deals: the owner of an open deal.
OWNER=$(curl -s -H "Authorization: Bearer $ANALYST_KEY" "$BASE/v1/opportunities?status=open&limit=1" \
  | grep -o '"owner":"[^"]*"' | head -1 | sed 's/"owner":"//;s/"//')
REP_KEY=$(key rep --owner "$OWNER")
sign_in "$WORK/rep" "$REP_KEY"
sign_in "$WORK/analyst" "$ANALYST_KEY"

# A deal and a rep that exist in this database.
DEAL=$(curl -s -b "$WORK/rep" "$BASE/deals" | grep -o 'href="/deals/[^"?]*"' | head -1 | sed 's/href="//;s/"//')
VERSION=$(curl -s -b "$WORK/analyst" "$BASE/models" | grep -o 'data-version="[^"]*"' | head -1 | sed 's/data-version="//;s/"//')

printf '%-40s %10s %12s %10s %6s\n' page cold_ms median_ms max_ms status
measure() { # jar path
  local cold times status
  cold=$(curl -s -o /dev/null -b "$1" -w '%{time_total}' "$BASE$2")
  status=$(curl -s -o /dev/null -b "$1" -w '%{http_code}' "$BASE$2")
  times=$(for _ in $(seq 1 "$RUNS"); do curl -s -o /dev/null -b "$1" -w '%{time_total}\n' "$BASE$2"; done | sort -n)
  printf '%-40s %10.1f %12.1f %10.1f %6s\n' "$2" "$(echo "$cold*1000" | bc -l)" \
    "$(echo "$times" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]*1000}')" \
    "$(echo "$times" | tail -1 | awk '{print $1*1000}')" "$status"
}
measure "$WORK/rep" "/deals"
measure "$WORK/analyst" "/deals?owner=$OWNER"
measure "$WORK/rep" "/deals?grade=A&sort=score&page=3"
measure "$WORK/rep" "$DEAL"
measure "$WORK/rep" "/deals?lang=fr"
measure "$WORK/analyst" "/pipeline"
measure "$WORK/analyst" "/pipeline?region=EMEA"
measure "$WORK/analyst" "/process"
measure "$WORK/analyst" "/resources"
measure "$WORK/analyst" "/models"
measure "$WORK/analyst" "/models/$VERSION"
measure "$WORK/analyst" "/team"
measure "$WORK/analyst" "/competitors"
measure "$WORK/analyst" "/customers"
measure "$WORK/rep" "/deals.csv"
