//! Scheduled retraining: every period (`--retrain-every 7d`) and/or once N deals have closed
//! since the active model. With several servers on one database, a lease row decides which one
//! runs the schedule; the one-run-at-a-time slot prevents duplicates in any case.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::runner::{RunPlan, TrainRequest, Trainer};
use crate::model::ModelArtifact;
use crate::store::models;
use crate::store::training_runs::{self, CreateError};

/// Name of the lease row the scheduling server holds.
pub const LEASE: &str = "retrain-schedule";

/// When to retrain on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schedule {
    /// Retrain when the newest scheduled run (or the active model) is this old.
    pub every: Option<Duration>,
    /// Retrain once this many deals closed after the active model's newest training deal (and
    /// after the last run started).
    pub after_closed: Option<u64>,
}

impl Schedule {
    /// From the settings; an invalid period is a startup error.
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Schedule, String> {
        let every = match settings.retrain_every.trim() {
            "" | "off" => None,
            text => Some(parse_duration(text).map_err(|e| format!("retrain_every: {e}"))?),
        };
        Ok(Schedule {
            every,
            after_closed: Some(settings.retrain_after_closed).filter(|n| *n > 0),
        })
    }

    /// True when neither trigger is set.
    pub fn is_off(&self) -> bool {
        self.every.is_none() && self.after_closed.is_none()
    }

    /// How often the scheduler looks (and renews its lease): often enough for the period, at
    /// most every 30 s.
    pub fn tick(&self) -> Duration {
        let quarter = self.every.map_or(Duration::from_secs(30), |e| e / 4);
        quarter.clamp(Duration::from_secs(1), Duration::from_secs(30))
    }
}

/// Parses `90s`, `30m`, `12h`, `7d`, `2w` and sums like `1d12h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(format!(
                    "`{text}`: unknown unit `{c}` (use s, m, h, d or w, e.g. 7d)"
                ))
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("`{text}`: a number must come before `{c}`"))?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| format!("`{text}` is too long"))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "`{text}`: `{number}` needs a unit (s, m, h, d or w, e.g. 7d)"
        ));
    }
    if total == 0 {
        return Err(format!("`{text}` is zero"));
    }
    Ok(Duration::from_secs(total))
}

/// Runs the recovery sweep and, when a schedule is set, the schedule, every `tick`.
pub fn spawn(trainer: Arc<Trainer>, schedule: Schedule) -> tokio::task::JoinHandle<()> {
    let tick = schedule.tick();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            // Any live server notices a run whose server died, not only that server on restart.
            if let Err(e) = trainer.recover().await {
                tracing::warn!(error = %e, "training-run recovery sweep failed");
            }
            if schedule.is_off() {
                continue;
            }
            if let Err(e) = run_once(&trainer, &schedule, tick * 3).await {
                tracing::warn!(error = %e, "scheduled retraining check failed");
            }
        }
    })
}

/// One scheduler step: take the lease, decide, start a run. Returns the run id started, if any.
pub async fn run_once(
    trainer: &Arc<Trainer>,
    schedule: &Schedule,
    lease_ttl: Duration,
) -> Result<Option<String>, sqlx::Error> {
    let db = trainer.db();
    if !training_runs::acquire_lease(db, LEASE, trainer.instance(), lease_ttl).await? {
        return Ok(None);
    }
    let active = match models::active(db).await? {
        Some((_, json)) => ModelArtifact::from_json_verified(&json).ok(),
        None => None,
    };
    let now = Utc::now();
    let mut why = None;
    if let Some(every) = schedule.every {
        let last = training_runs::last_created(db, "schedule")
            .await?
            .or(active.as_ref().map(|a| a.created_at));
        let due = last.is_none_or(|t| (now - t).to_std().unwrap_or_default() >= every);
        if due {
            why = Some(format!("every {}s", every.as_secs()));
        }
    }
    if let (None, Some(n)) = (&why, schedule.after_closed) {
        let since_model = active.as_ref().and_then(|a| a.training.last_closed_at);
        let since_run = training_runs::last_created(db, "schedule").await?;
        let since = since_model.max(since_run);
        let closed = training_runs::closed_deals_after(db, since).await?;
        if closed >= n as i64 {
            why = Some(format!("{closed} deals closed since the last training"));
        }
    }
    let Some(why) = why else {
        return Ok(None);
    };
    // Retrain with the active model's features (the default spec when none is active).
    let request = TrainRequest::default();
    let mut plan: RunPlan = match request.plan() {
        Ok(plan) => plan,
        Err(e) => {
            tracing::error!(error = %e, "default training request refused");
            return Ok(None);
        }
    };
    if let Some(active) = &active {
        plan.spec = match active.features.spec() {
            Ok(spec) => spec,
            Err(e) => {
                tracing::error!(error = %e, "the active model's feature spec is refused");
                return Ok(None);
            }
        };
        plan.recorded["spec"] = serde_json::json!(plan.spec.to_toml().ok());
    }
    plan.recorded["schedule"] = serde_json::json!(why);
    match trainer.submit(plan, "schedule", "schedule").await {
        Ok(run) => {
            tracing::info!(run = %run.id, %why, "scheduled retraining started");
            Ok(Some(run.id))
        }
        Err(CreateError::Busy(other)) => {
            tracing::info!(running = %other, "scheduled retraining skipped: a run is in progress");
            Ok(None)
        }
        Err(CreateError::Db(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_humans_write_them() {
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_duration("1d12h").unwrap(), Duration::from_secs(36 * 3_600));
        assert_eq!(parse_duration(" 90s ").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("7").unwrap_err().contains("unit"));
        assert!(parse_duration("7y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn the_tick_follows_the_period_within_bounds() {
        let s = Schedule {
            every: Some(Duration::from_secs(8)),
            after_closed: None,
        };
        assert_eq!(s.tick(), Duration::from_secs(2));
        let s = Schedule {
            every: Some(Duration::from_secs(7 * 86_400)),
            after_closed: None,
        };
        assert_eq!(s.tick(), Duration::from_secs(30));
    }
}
