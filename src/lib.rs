//! dealscore — opportunity scoring for Sales Ops.
//!
//! A library holding all logic, and thin binaries over it (`dealscore`, `dealscore-train`).
//! Data flows one way: `api` → `ingest` / model modules → `store`.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod ingest;
pub mod store;
pub mod telemetry;
pub mod writeback;
