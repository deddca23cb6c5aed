#!/usr/bin/env python3
"""usage: make_batch.py [N] > batchN.json — a POST /v1/score batch of N generated opportunities
(default 10,000), drawn with a fixed seed so every run of the benchmark sends the same body."""
import json, random, sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
random.seed(7)
sectors = ["software", "retail", "manufacturing", "finance", "healthcare", "energy"]
roles = ["decision_maker", "economic_buyer", "champion", "influencer", "technical", "end_user", "procurement"]
regions = ["DACH", "France", "Nordics", "UK", "Benelux", "Iberia"]
opportunities = [
    {
        "sector": random.choice(sectors),
        "region": random.choice(regions),
        "contact_role": random.choice(roles),
        "amount": random.randint(1000, 200000),
        "cycle_days": random.randint(1, 200),
        "interaction_count": random.randint(0, 40),
        "response_hours": round(random.uniform(0.5, 96), 1),
    }
    for _ in range(n)
]
json.dump({"opportunities": opportunities}, sys.stdout)
