//! Load generator for `POST /v1/webhooks/{source}`: N concurrent senders, each sending signed
//! deliveries (one event, or batches of `--batch` events) back to back for `--seconds`, every
//! event with a unique id so none is short-circuited as a duplicate. wrk cannot sign bodies with
//! HMAC-SHA256, hence this tool. Prints events/s and latency percentiles as JSON. See BENCHMARKS.md.
//!
//! `cargo run --release --example webhook_load -- --url http://127.0.0.1:18088/v1/webhooks/crm \
//!     --secret whsec_bench --senders 16 --seconds 20 [--batch 1000] [--deals 5000]`

use std::time::{Duration, Instant};

use serde_json::json;

struct Args {
    url: String,
    secret: String,
    senders: usize,
    seconds: u64,
    batch: usize,
    deals: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        secret: String::new(),
        senders: 16,
        seconds: 20,
        batch: 1,
        deals: 5000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--url" => args.url = value.clone(),
            "--secret" => args.secret = value.clone(),
            "--senders" => args.senders = number()?.max(1),
            "--seconds" => args.seconds = number()? as u64,
            "--batch" => args.batch = number()?.max(1),
            "--deals" => args.deals = number()?.max(1),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.url.is_empty() || args.secret.is_empty() {
        return Err("--url and --secret are required".into());
    }
    Ok(args)
}

/// One upsert event for deal `n % deals`; the id is unique per (sender, sequence).
fn event(sender: usize, seq: u64, deals: usize) -> serde_json::Value {
    let deal = (seq as usize * 7919 + sender * 104_729) % deals;
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    json!({
        "id": format!("load-{}-{sender}-{seq}", std::process::id()),
        "type": "opportunity.upserted",
        "occurred_at": at,
        "data": {
            "external_id": format!("wh-{deal}"), "name": format!("Deal {deal}"),
            "account": format!("Acct {}", deal % 500), "sector": "software", "region": "EMEA",
            "owner": format!("rep-{}", deal % 30), "contact_role": "champion",
            "amount": (seq % 997) as f64 * 113.5, "status": "open", "created_at": "2026-09-01",
            "interaction_count": seq % 20, "response_hours": (seq % 48) as f64 + 0.5
        }
    })
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("webhook_load: {e}");
            std::process::exit(2);
        }
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for sender in 0..args.senders {
        let client = client.clone();
        let (url, secret, batch, deals) = (args.url.clone(), args.secret.clone(), args.batch, args.deals);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut events, mut failures, mut seq) = (0u64, 0u64, 0u64);
            while Instant::now() < deadline {
                let body = if batch == 1 {
                    seq += 1;
                    event(sender, seq, deals).to_string()
                } else {
                    let list: Vec<_> = (0..batch)
                        .map(|_| {
                            seq += 1;
                            event(sender, seq, deals)
                        })
                        .collect();
                    json!({ "events": list }).to_string()
                };
                let signature = dealscore::ingest::signature::header_value(
                    &secret,
                    chrono::Utc::now().timestamp(),
                    body.as_bytes(),
                );
                let started = Instant::now();
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("Dealscore-Signature", signature)
                    .body(body)
                    .send()
                    .await;
                let ok = match sent {
                    Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                latencies.push(started.elapsed());
                if ok {
                    events += batch as u64;
                } else {
                    failures += 1;
                }
            }
            (events, failures, latencies)
        }));
    }
    let started = Instant::now();
    let (mut events, mut failures, mut latencies) = (0u64, 0u64, Vec::new());
    for task in tasks {
        if let Ok((e, f, l)) = task.await {
            events += e;
            failures += f;
            latencies.extend(l);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    let report = json!({
        "senders": args.senders, "batch": args.batch, "seconds": elapsed,
        "events_ok": events, "failed_requests": failures,
        "events_per_sec": events as f64 / elapsed,
        "latency_ms": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0)}
    });
    println!("{report}");
}
