//! The model artifact: everything scoring and explaining need, plus the evidence of how the
//! model was trained, in one JSON document protected by a SHA-256 checksum.
//!
//! Format and checksum rule: `models/README.md`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::evaluation::{Backtest, Convergence, CvSummary, Metrics};
use super::factors::SuccessFactor;
use super::profile::TrainingProfile;
use crate::features::FittedFeatures;

/// The artifact format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A trained, self-contained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// Artifact format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Version id, e.g. `m-20261128-163000-3fa9c2`.
    pub version: String,
    /// When training finished.
    pub created_at: DateTime<Utc>,
    /// dealscore version that trained it.
    pub dealscore_version: String,
    /// The feature spec with every fitted encoder (bins, vocabularies, imputation values).
    pub features: FittedFeatures,
    /// Intercept (log-odds of winning for an all-zero row).
    pub intercept: f64,
    /// One coefficient per design-matrix column, in column order.
    pub coefficients: Vec<ColumnCoefficient>,
    /// Alpha selection by cross-validation.
    pub cv: CvSummary,
    /// Data the model was trained on.
    pub training: TrainingSummary,
    /// Metrics on the holdout of a fit on the training part.
    pub holdout_metrics: Metrics,
    /// The same metrics for a prior-only model predicting the training base rate.
    pub baseline_metrics: Metrics,
    /// Per-feature effects and won/lost reference values (same order as `features`).
    pub success_factors: Vec<SuccessFactor>,
    /// How the solver ended for the shipped fit.
    pub convergence: Convergence,
    /// Per-feature training distributions for drift checks (`docs/drift.md`). Absent in
    /// artifacts trained before profiles existed; such models still load and score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<TrainingProfile>,
    /// Backtests: the model's method retrained on what was known before past instants, scoring
    /// the deals open then (empty when the training data had no dates or no such deals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backtests: Vec<Backtest>,
    /// Quantiles of the scores and lever gains of the deals the model was calibrated on, from
    /// which grades and focus classes cut by default (`docs/scoring-method.md`). Absent in
    /// artifacts trained before cut points existed: those grade and focus on the configured
    /// fixed cuts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_points: Option<super::cuts::CutPoints>,
    /// Hex SHA-256 of the artifact's canonical JSON with this field empty (see models/README.md).
    #[serde(default)]
    pub sha256: String,
}

/// A named coefficient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnCoefficient {
    /// Column name (`response_hours[4,8.5)`, `sector=retail`).
    pub column: String,
    /// Feature the column belongs to.
    pub feature: String,
    /// Log-odds per unit.
    pub coefficient: f64,
}

/// Which deals trained the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// "now" used for open-deal ages and the version id.
    pub now: DateTime<Utc>,
    /// Informational: start of the extraction window, if any.
    pub window_since: Option<DateTime<Utc>>,
    /// Informational: end of the extraction window, if any.
    pub window_until: Option<DateTime<Utc>>,
    /// `time` or `random`.
    pub split: String,
    /// Share of closed deals held out.
    pub test_fraction: f64,
    /// Random seed (random split and CV folds).
    pub seed: u64,
    /// Won deals (all closed deals).
    pub won: usize,
    /// Lost deals.
    pub lost: usize,
    /// Rows in the training part.
    pub train_rows: usize,
    /// Rows in the holdout.
    pub holdout_rows: usize,
    /// Earliest closed_at among closed deals, if known.
    pub first_closed_at: Option<DateTime<Utc>>,
    /// Latest closed_at among closed deals, if known.
    pub last_closed_at: Option<DateTime<Utc>>,
    /// Time split: earliest closed_at in the holdout.
    pub holdout_from: Option<DateTime<Utc>>,
    /// Rows the shipped model was refit on (all closed deals, or their snapshots).
    pub final_rows: usize,
    /// The instants of each closed deal's open life the model learnt from (`{"per_deal": 3}` or
    /// `{"ages": [7, 30, …]}`); absent for a model trained on final states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<crate::features::snapshot_plan::SnapshotPlan>,
    /// With snapshots: closed deals that had a recorded field history or activities before
    /// their close (the others were seen on their current values, closing fields hidden).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deals_with_history: Option<usize>,
    /// Trained from the database: the SHA-256 of what decided the fit (the closed deals' data
    /// version, the spec, snapshots and options; `lifecycle::unchanged`). A later run with the
    /// same fingerprint would fit this model again, so it registers nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fingerprint: Option<String>,
}

/// Why an artifact was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Reading the file failed.
    #[error("cannot read model artifact: {0}")]
    Io(#[from] io::Error),
    /// Not JSON of the artifact's shape.
    #[error("model artifact is not valid JSON of the expected shape: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Written by a format this build does not know.
    #[error("model artifact format version {found} is not supported (this build reads {FORMAT_VERSION})")]
    UnsupportedFormat {
        /// Version found in the file.
        found: u32,
    },
    /// Content does not match its checksum.
    #[error("model artifact checksum mismatch: recorded {recorded}, computed {computed}")]
    ChecksumMismatch {
        /// Checksum stored in the file.
        recorded: String,
        /// Checksum of the content.
        computed: String,
    },
    /// The artifact's bytes do not match the checksum the registry recorded when it was
    /// registered: the stored artifact was changed afterwards (its own checksum may have been
    /// recomputed, so only the registry's copy catches it).
    #[error(
        "model artifact checksum does not match the registry: registered {registered}, computed {computed}"
    )]
    RegistryMismatch {
        /// Checksum recorded in the registry.
        registered: String,
        /// Checksum of the stored artifact's bytes.
        computed: String,
    },
    /// Internally inconsistent (e.g. coefficient count ≠ column count).
    #[error("model artifact is inconsistent: {0}")]
    Inconsistent(String),
}

impl ModelArtifact {
    /// The canonical checksum: lowercase hex SHA-256 of the artifact serialised with
    /// `serde_json::to_string_pretty` while its `sha256` field is the empty string.
    pub fn compute_sha256(&self) -> String {
        let mut copy = self.clone();
        copy.sha256.clear();
        // Serialising plain data (string map keys, no NaN) cannot fail; an empty body would
        // simply never verify.
        let text = serde_json::to_string_pretty(&copy).unwrap_or_default();
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// Stores the checksum of the current content in `sha256`.
    pub fn seal(&mut self) {
        self.sha256 = self.compute_sha256();
    }

    /// Pretty JSON (what [`ModelArtifact::save_atomic`] writes, without the final newline).
    pub fn to_json_pretty(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// Parses an artifact and refuses unknown format versions, checksum mismatches and
    /// inconsistent content.
    ///
    /// The checksum is checked on the text itself, byte for byte (so no number is re-printed):
    /// trailing whitespace is ignored, the value of the last `"sha256": "…"` member (the
    /// top-level field, serialised last) is replaced by the empty string, and the SHA-256 of the
    /// result must equal that value.
    pub fn from_json_verified(text: &str) -> Result<ModelArtifact, ArtifactError> {
        // Check the version before the full shape so a future format gets the clear error.
        #[derive(Deserialize)]
        struct Header {
            format_version: u32,
        }
        let header: Header = serde_json::from_str(text)?;
        if header.format_version != FORMAT_VERSION {
            return Err(ArtifactError::UnsupportedFormat {
                found: header.format_version,
            });
        }
        let artifact: ModelArtifact = serde_json::from_str(text)?;
        let computed = text_checksum(text, &artifact.sha256);
        if computed.as_deref() != Some(artifact.sha256.as_str()) {
            return Err(ArtifactError::ChecksumMismatch {
                recorded: artifact.sha256,
                computed: computed.unwrap_or_else(|| "(no top-level \"sha256\" member found)".to_owned()),
            });
        }
        artifact.check_consistency()?;
        Ok(artifact)
    }

    /// [`ModelArtifact::from_json_verified`], and the checksum of the text must also equal
    /// `registered`, the one the registry recorded when the version was registered. The embedded
    /// checksum only proves the file is whole: whoever can edit the artifact can recompute it, so
    /// the registry's copy is what proves the artifact is the one that was registered.
    pub fn from_registry_verified(text: &str, registered: &str) -> Result<ModelArtifact, ArtifactError> {
        let artifact = ModelArtifact::from_json_verified(text)?;
        // `from_json_verified` proved the embedded checksum is the checksum of the text.
        if !artifact.sha256.eq_ignore_ascii_case(registered.trim()) {
            return Err(ArtifactError::RegistryMismatch {
                registered: registered.to_owned(),
                computed: artifact.sha256,
            });
        }
        Ok(artifact)
    }

    /// Reads and verifies an artifact file.
    pub fn load_verified(path: &Path) -> Result<ModelArtifact, ArtifactError> {
        let text = fs::read_to_string(path)?;
        ModelArtifact::from_json_verified(&text)
    }

    /// Writes `dir/<version>.json` atomically: temporary file in `dir`, fsync, rename, fsync of
    /// the directory. Readers never see a partial file.
    pub fn save_atomic(&self, dir: &Path) -> io::Result<PathBuf> {
        if self.version.is_empty() || self.version.contains(['/', '\\']) || self.version.starts_with('.') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{}` is not usable as a file name", self.version),
            ));
        }
        fs::create_dir_all(dir)?;
        let json = self.to_json_pretty().map_err(io::Error::other)?;
        let target = dir.join(format!("{}.json", self.version));
        let temp = dir.join(format!(".{}.json.tmp-{}", self.version, std::process::id()));
        let result = (|| {
            let mut file = File::create(&temp)?;
            file.write_all(json.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&temp, &target)?;
            // Persist the rename itself; directories cannot be opened for sync on every
            // platform, so a failure here is not fatal.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result.map(|()| target)
    }

    /// Checks that coefficients line up with the fitted features' columns.
    pub fn check_consistency(&self) -> Result<(), ArtifactError> {
        let fail = |m: String| Err(ArtifactError::Inconsistent(m));
        if self.coefficients.len() != self.features.n_columns {
            return fail(format!(
                "{} coefficients for {} columns",
                self.coefficients.len(),
                self.features.n_columns
            ));
        }
        let mut next = 0;
        for f in &self.features.features {
            if f.offset != next {
                return fail(format!(
                    "feature `{}` starts at column {}, expected {next}",
                    f.def.name(),
                    f.offset
                ));
            }
            if f.encoder.column_count() != f.columns.len() {
                return fail(format!(
                    "feature `{}` has {} columns but its encoder produces {}",
                    f.def.name(),
                    f.columns.len(),
                    f.encoder.column_count()
                ));
            }
            for (i, column) in f.columns.iter().enumerate() {
                let c = &self.coefficients[f.offset + i];
                if &c.column != column || c.feature != f.def.name() {
                    return fail(format!(
                        "column {} is `{}`, expected `{column}`",
                        f.offset + i,
                        c.column
                    ));
                }
            }
            next += f.columns.len();
        }
        if self.cut_points.as_ref().is_some_and(|c| !c.is_consistent()) {
            return fail("cut_points tables are not 101 ascending finite quantiles".to_owned());
        }
        if next != self.features.n_columns {
            return fail(format!(
                "features cover {next} columns, n_columns is {}",
                self.features.n_columns
            ));
        }
        if self.success_factors.len() != self.features.features.len()
            || self
                .success_factors
                .iter()
                .zip(&self.features.features)
                .any(|(s, f)| s.feature != f.def.name())
        {
            return fail("success factors do not follow the feature order".to_owned());
        }
        let finite = self.intercept.is_finite()
            && self.coefficients.iter().all(|c| c.coefficient.is_finite())
            && self
                .success_factors
                .iter()
                .all(|s| s.mean_contribution.is_finite());
        if !finite {
            return fail("non-finite coefficient".to_owned());
        }
        Ok(())
    }

    /// Coefficient of design column `index` (0 when out of range; consistency is checked on load).
    pub fn coefficient(&self, index: usize) -> f64 {
        self.coefficients.get(index).map_or(0.0, |c| c.coefficient)
    }
}

/// SHA-256 of an artifact text with its recorded checksum blanked; `None` when the text has no
/// `"sha256": "<recorded>"` member.
fn text_checksum(text: &str, recorded: &str) -> Option<String> {
    let text = text.trim_end();
    let member = format!("\"sha256\": \"{recorded}\"");
    let at = text.rfind(&member)?;
    let mut blanked = String::with_capacity(text.len());
    blanked.push_str(&text[..at]);
    blanked.push_str("\"sha256\": \"\"");
    blanked.push_str(&text[at + member.len()..]);
    Some(hex::encode(Sha256::digest(blanked.as_bytes())))
}

/// Builds a version id `m-YYYYMMDD-HHMMSS-<6 hex>` from a time and some content bytes.
pub fn version_id(at: DateTime<Utc>, content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    format!("m-{}-{}", at.format("%Y%m%d-%H%M%S"), &hex::encode(digest)[..6])
}
