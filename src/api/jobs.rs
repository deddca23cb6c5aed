//! Background jobs (rescoring) and their status, kept in memory by the server that runs them.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::problems::problems;
use crate::auth::AnalystAccess;
use crate::error::{ApiError, ApiResult};
use crate::tr;

/// State of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to start.
    Queued,
    /// In progress.
    Running,
    /// Finished.
    Succeeded,
    /// Stopped with an error.
    Failed,
}

/// A job's status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStatus {
    /// Job id.
    pub id: String,
    /// What it does.
    pub kind: String,
    /// State.
    pub state: JobState,
    /// Items done.
    pub done: u64,
    /// Items in total (when known).
    pub total: Option<u64>,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time.
    pub finished_at: Option<DateTime<Utc>>,
    /// Failure reason.
    pub error: Option<String>,
}

/// In-memory job table.
#[derive(Debug, Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, JobStatus>>,
}

impl Jobs {
    /// Registers a new job and returns its id.
    pub fn start(&self, kind: &str, total: Option<u64>) -> String {
        let id = format!("job-{}", &crate::auth::generate_key()[3..15]);
        let status = JobStatus {
            id: id.clone(),
            kind: kind.to_owned(),
            state: JobState::Running,
            done: 0,
            total,
            started_at: Utc::now(),
            finished_at: None,
            error: None,
        };
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(id.clone(), status);
        }
        id
    }

    /// Updates progress.
    pub fn progress(&self, id: &str, done: u64) {
        if let Ok(mut jobs) = self.jobs.lock() {
            if let Some(job) = jobs.get_mut(id) {
                job.done = done;
            }
        }
    }

    /// Marks a job finished (with an error when it failed).
    pub fn finish(&self, id: &str, error: Option<String>) {
        if let Ok(mut jobs) = self.jobs.lock() {
            if let Some(job) = jobs.get_mut(id) {
                job.state = if error.is_some() {
                    JobState::Failed
                } else {
                    JobState::Succeeded
                };
                job.error = error;
                job.finished_at = Some(Utc::now());
            }
        }
    }

    /// A job's status.
    pub fn get(&self, id: &str) -> Option<JobStatus> {
        self.jobs.lock().ok()?.get(id).cloned()
    }

    /// True when a job of this kind is running.
    pub fn running(&self, kind: &str) -> Option<String> {
        let jobs = self.jobs.lock().ok()?;
        jobs.values()
            .find(|j| j.kind == kind && j.state == JobState::Running)
            .map(|j| j.id.clone())
    }
}

problems!(JobProblems: AUTH, NOT_FOUND);

/// A job's status.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "scoring",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobStatus), JobProblems),
    security(("api_key" = [])))]
#[get("/jobs/{id}")]
pub async fn get(
    _caller: AnalystAccess,
    jobs: web::Data<Jobs>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let status = jobs.get(&id).ok_or_else(|| {
        ApiError::NotFound(
            tr!(
                "no job `{id}` on this server",
                "aucune tâche `{id}` sur ce serveur"
            )
            .into(),
        )
    })?;
    Ok(HttpResponse::Ok().json(status))
}
