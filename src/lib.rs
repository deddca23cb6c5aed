//! dealscore — opportunity scoring for Sales Ops.
//!
//! A library holding all logic, and thin binaries over it (`dealscore`, `dealscore-train`).
//! Data flows one way: `api` → `ingest` / `model` / `training` → `store`.

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
pub mod retention;
pub mod scoring;
pub mod serving;
pub mod store;
pub mod telemetry;
pub mod train_job;
pub mod training;
pub mod warmup;
pub mod web;
