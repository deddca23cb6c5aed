//! A configured CRM connection: its name, its signing secrets, the field mapping applied to its
//! events' `data`, and where its score write-backs go. Everything else in `ingest::webhook` reads
//! a [`Source`]; nothing here knows about events.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::config::Settings;
use crate::ingest::mapping::ImportMapping;

/// One configured CRM connection, ready to use. Its `Debug` output hides the secrets.
#[derive(Clone)]
pub struct Source {
    /// Name used in the URL.
    pub name: String,
    /// Accepted HMAC secrets; the first signs write-backs.
    pub secrets: Vec<String>,
    /// Field mapping applied to event `data` (empty mapping when none is configured).
    pub mapping: ImportMapping,
    /// Where score write-backs go.
    pub callback_url: Option<String>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("secrets", &format_args!("[{} hidden]", self.secrets.len()))
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

/// All configured sources plus the signature tolerance.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    // Shared, so a delivery's unit of work can own its source without copying the mapping.
    by_name: HashMap<String, Arc<Source>>,
    /// Allowed clock gap for signatures, in seconds.
    pub tolerance_secs: u64,
}

/// A webhook source that cannot be used; reported at startup.
#[derive(Debug, thiserror::Error)]
pub enum SourceConfigError {
    /// Bad or duplicate name.
    #[error("webhook source `{0}`: the name must be 1–64 letters, digits, `-` or `_`, and unique")]
    BadName(String),
    /// No secret.
    #[error("webhook source `{0}`: at least one non-empty secret is required")]
    NoSecret(String),
    /// The mapping file cannot be read or is invalid.
    #[error("webhook source `{source_name}`: mapping file {path}: {message}")]
    Mapping {
        /// Source name.
        source_name: String,
        /// Mapping file path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Sources {
    /// Validates the configured sources and loads their mapping files.
    pub fn from_settings(settings: &Settings) -> Result<Sources, SourceConfigError> {
        let mut by_name = HashMap::new();
        for s in &settings.webhook_sources {
            let name_ok = !s.name.is_empty()
                && s.name.len() <= 64
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !name_ok || by_name.contains_key(&s.name) {
                return Err(SourceConfigError::BadName(s.name.clone()));
            }
            if s.secrets.is_empty() || s.secrets.iter().any(|k| k.is_empty()) {
                return Err(SourceConfigError::NoSecret(s.name.clone()));
            }
            let mapping = match &s.mapping {
                None => ImportMapping::default(),
                Some(path) => {
                    let error = |message: String| SourceConfigError::Mapping {
                        source_name: s.name.clone(),
                        path: path.clone(),
                        message,
                    };
                    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
                    ImportMapping::from_toml(&text).map_err(|e| error(e.to_string()))?
                }
            };
            by_name.insert(
                s.name.clone(),
                Arc::new(Source {
                    name: s.name.clone(),
                    secrets: s.secrets.clone(),
                    mapping,
                    callback_url: s.callback_url.clone(),
                }),
            );
        }
        Ok(Sources {
            by_name,
            tolerance_secs: settings.webhook_tolerance_secs,
        })
    }

    /// The source named `name`, if configured.
    pub fn get(&self, name: &str) -> Option<&Arc<Source>> {
        self.by_name.get(name)
    }
}

/// Renames mapped keys, drops ignored ones, maps status values and fills defaults, the way the
/// CSV import reads a row.
pub fn apply_mapping(data: Map<String, Value>, mapping: &ImportMapping) -> Map<String, Value> {
    if *mapping == ImportMapping::default() {
        return data;
    }
    let mut out = Map::with_capacity(data.len());
    let mut renamed = Vec::new();
    for (key, value) in data {
        if mapping.ignore.contains(&key) {
            continue;
        }
        match mapping.columns.iter().find(|(_, header)| **header == key) {
            // Mapped keys are inserted last so they win over a same-named raw key.
            Some((field, _)) => renamed.push((field.clone(), value)),
            None => {
                out.insert(key, value);
            }
        }
    }
    out.extend(renamed);
    if let Some(Value::String(raw)) = out.get("status") {
        let mapped = mapping.map_status(raw).to_owned();
        out.insert("status".into(), Value::String(mapped));
    }
    for (field, default) in &mapping.defaults {
        let missing = match out.get(field) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(_) => false,
        };
        if missing {
            // Defaults are text in the mapping file; numeric fields need JSON numbers here.
            let numeric = ["amount", "interaction_count", "response_hours"].contains(&field.as_str());
            let value = numeric
                .then(|| default.trim().parse::<f64>().ok())
                .flatten()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(default.clone()), Value::Number);
            out.insert(field.clone(), value);
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// A source named `crm` with one secret and `mapping`; the event tests use it too.
    pub(in crate::ingest::webhook) fn source(mapping: &str) -> Source {
        Source {
            name: "crm".into(),
            secrets: vec!["k".into()],
            mapping: ImportMapping::from_toml(mapping).unwrap(),
            callback_url: None,
        }
    }

    #[test]
    fn mapping_renames_maps_status_and_fills_defaults() {
        let s = source(
            "ignore = [\"Notes\"]\n[columns]\nexternal_id = \"DealId\"\nstatus = \"Outcome\"\n\
             [status_values]\n\"Closed Won\" = \"won\"\n[defaults]\ncurrency = \"USD\"\namount = \"10\"\n",
        );
        let data = json!({"DealId": "D-1", "Outcome": "Closed Won", "Notes": "x", "closed_at": "2025-01-02"});
        let Value::Object(data) = data else { unreachable!() };
        let out = apply_mapping(data, &s.mapping);
        assert_eq!(out["external_id"], "D-1");
        assert_eq!(out["status"], "won");
        assert_eq!(out["currency"], "USD");
        assert_eq!(out["amount"], 10.0);
        assert!(!out.contains_key("Notes"));
    }
}
