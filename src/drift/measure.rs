//! Reads the populations a drift report compares: every open deal, and the deals closed since
//! the model's training data ends.

use chrono::{DateTime, Duration, Utc};

use super::report::{DriftReport, Population, PopulationCounter};
use crate::domain::Status;
use crate::i18n::format::NNBSP;
use crate::i18n::Localized;
use crate::model::profile::TrainingProfile;
use crate::model::ModelArtifact;
use crate::store::opportunities::{self, ListFilter};
use crate::store::Db;
use crate::tr;

/// Open deals read per page (memory stays bounded whatever the pipeline size).
const PAGE: usize = 5_000;

/// Why no drift report could be made.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    /// The artifact has no training profile (trained before profiles existed).
    #[error("{}", self.localized())]
    NoProfile {
        /// The model version.
        version: String,
    },
    /// The profile does not list the model's features in order.
    #[error("{}", self.localized())]
    ProfileMismatch {
        /// The model version.
        version: String,
    },
    /// The store could not be read.
    #[error("cannot read deals: {0}")]
    Db(#[from] sqlx::Error),
}

impl DriftError {
    /// The message in every language (for the errors a client can act on).
    pub fn localized(&self) -> Localized {
        match self {
            DriftError::NoProfile { version } => tr!(
                "model {version} carries no training profile, so drift cannot be measured against it: \
                 retrain (dealscore-train or POST /v1/models/train) and activate the new version",
                "le modèle {version} n'a pas de profil d'entraînement, la dérive ne peut donc pas être \
                 mesurée par rapport à lui{NNBSP}: réentraînez (dealscore-train ou POST /v1/models/train) \
                 et activez la nouvelle version"
            ),
            DriftError::ProfileMismatch { version } => tr!(
                "model {version} has a training profile that does not match its features; retrain it",
                "le profil d'entraînement du modèle {version} ne correspond pas à ses variables{NNBSP}; \
                 réentraînez-le"
            ),
            DriftError::Db(e) => Localized::new(
                self.to_string(),
                format!("impossible de lire les affaires{NNBSP}: {e}"),
            ),
        }
    }
}

/// The artifact's profile, checked against its features.
pub fn profile_of(artifact: &ModelArtifact) -> Result<&TrainingProfile, DriftError> {
    let profile = artifact.profile.as_ref().ok_or_else(|| DriftError::NoProfile {
        version: artifact.version.clone(),
    })?;
    let matches = profile.features.len() == artifact.features.features.len()
        && profile
            .features
            .iter()
            .zip(&artifact.features.features)
            .all(|(p, f)| {
                p.feature == f.def.name() && p.counts.len() == p.bins.len() && p.labels.len() == p.bins.len()
            });
    if !matches {
        return Err(DriftError::ProfileMismatch {
            version: artifact.version.clone(),
        });
    }
    Ok(profile)
}

/// The time after which a closed deal is "closed since training": the newest closing date of
/// the training data, or the training "now" when no deal had a date.
pub fn closed_since(artifact: &ModelArtifact) -> DateTime<Utc> {
    artifact.training.last_closed_at.unwrap_or(artifact.training.now)
}

/// Compares the open deals and the deals closed since training with the artifact's training
/// profile. `now` is the age reference of open deals (the scoring code uses the current time).
pub async fn measure(
    db: &Db,
    artifact: &ModelArtifact,
    now: DateTime<Utc>,
) -> Result<DriftReport, DriftError> {
    let profile = profile_of(artifact)?;
    let features = &artifact.features;

    let mut open = PopulationCounter::new(profile);
    let filter = ListFilter {
        status: Some(Status::Open),
        ..ListFilter::default()
    };
    let mut after = 0;
    loop {
        let (page, more) = opportunities::list(db, &filter, after, PAGE).await?;
        for stored in &page {
            open.add(features, profile, &stored.opportunity, now);
        }
        match page.last() {
            Some(last) if more => after = last.id,
            _ => break,
        }
    }

    let since = closed_since(artifact);
    let mut closed = PopulationCounter::new(profile);
    // closed_deals takes an inclusive bound; a deal closed at exactly `since` was in training.
    for opp in opportunities::closed_deals(db, Some(since + Duration::milliseconds(1)), None).await? {
        closed.add(features, profile, &opp, now);
    }

    Ok(DriftReport::new(
        &artifact.version,
        profile,
        Utc::now(),
        vec![
            open.compare(profile, Population::Open, None),
            closed.compare(profile, Population::ClosedSince, Some(since)),
        ],
    ))
}
