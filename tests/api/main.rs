//! Integration tests through the public interfaces (HTTP on a real server, the CLI binary).
//! Every test runs on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set.

mod auth;
mod browser;
mod cli;
mod competitors;
mod contention;
mod customers;
mod drift;
mod focus;
mod health;
mod helpers;
mod history;
mod i18n;
mod imports;
mod input_bounds;
mod insights;
mod lifecycle;
mod lists;
mod openapi;
mod opportunities;
mod point_in_time;
mod retention;
mod scopes;
mod scoring;
mod security;
mod training;
mod web;
mod webhooks;
