#!/usr/bin/env python3
"""usage: insights-bench.py BASE_URL KEY — per insight: 1 first request, then 9 warm runs; prints ms."""
import statistics, subprocess, sys
base, key = sys.argv[1], sys.argv[2]
paths = [
    "/v1/insights/pipeline?from=2026-08-01&to=2026-10-31&group_by=month",
    "/v1/insights/pipeline?from=2026-08-01&to=2026-10-31&group_by=owner",
    "/v1/insights/pipeline?from=2026-08-01&to=2026-10-31&group_by=region&format=csv",
    "/v1/insights/success-factors",
    "/v1/insights/at-risk?limit=50",
    "/v1/insights/resources?from=2026-08-01&to=2026-10-31",
    "/v1/insights/accounts",
    "/v1/insights/accounts?limit=100000",
    "/v1/insights/customers?from=2025-11-01&to=2026-10-31",
    "/v1/insights/customers?from=2025-11-01&to=2026-10-31&format=csv",
    "/v1/insights/objectives?period=2026-Q3",
    "/v1/insights/breakdown?by=owner&from=2026-08-01&to=2026-10-31",
    "/v1/insights/breakdown?by=attr.lead_source&from=2026-08-01&to=2026-10-31",
    # Needs DEALSCORE_INSIGHTS_COMPETITOR_FIELD=attr.competitor (and _LOSS_REASON_FIELD=attr.loss_reason).
    "/v1/insights/competitors?from=2026-08-01&to=2026-10-31",
    "/v1/insights/competitors?from=2026-08-01&to=2026-10-31&region=DACH&format=csv",
]
def run(path):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                          "-H", f"Authorization: Bearer {key}", base + path], capture_output=True, text=True).stdout.split()
    if out[0] != "200":
        raise SystemExit(f"{path}: HTTP {out[0]}")
    return float(out[1]) * 1000
for p in paths:
    first = run(p)
    warm = [run(p) for _ in range(9)]
    print(f"{p}\tfirst {first:.0f} ms\twarm median {statistics.median(warm):.1f} ms\tmin {min(warm):.1f}\tmax {max(warm):.1f}")
