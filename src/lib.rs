//! dealscore — opportunity scoring for Sales Ops.
//!
//! A library holding all logic, and thin binaries over it (`dealscore`, `dealscore-train`).
//!
//! # Layers
//!
//! Modules are stacked in layers, lowest first. A module imports only from layers below its own,
//! or from its own layer one way (no two modules reach each other); `tests/architecture.rs`
//! checks this on every `cargo test`, and docs/architecture.md draws the module map and the
//! flow of a score and of a webhook delivery.
//!
//! 0. foundation: [`domain`] (parsed, validated types), [`i18n`], [`config`], [`telemetry`],
//!    [`generate`] (the synthetic CRM).
//! 1. [`features`]: the feature spec and its encoding, shared by training and scoring.
//! 2. [`model`]: the artifact (save, load, verify, training profile), predict, explain.
//! 3. [`scoring`] (score, explanation, next intervention) and [`training`] (fit, evaluate);
//!    neither needs the other outside tests.
//! 4. [`store`]: every SQL statement, on SQLite and PostgreSQL.
//! 5. [`serving`] (the active model and its sentences), [`error`] (problem+json),
//!    [`refresh`], [`retention`].
//! 6. services: [`ingest`] (CSV import, CRM webhooks and score write-back), [`insights`],
//!    [`lifecycle`] (training jobs, the model registry, the promotion gate), [`drift`],
//!    [`ranking`], [`auth`], [`warmup`].
//! 7. front ends: [`api`] (JSON) and [`web`] (pages), which never import each other.
//! 8. [`app`]: the server, built from settings.
//! 9. the command line: [`cli`].

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod drift;
pub mod error;
pub mod features;
pub mod generate;
pub mod i18n;
pub mod ingest;
pub mod insights;
pub mod lifecycle;
pub mod model;
pub mod ranking;
pub mod refresh;
pub mod rescoring;
pub mod retention;
pub mod scoring;
pub mod serving;
pub mod store;
pub mod telemetry;
pub mod training;
pub mod warmup;
pub mod web;
