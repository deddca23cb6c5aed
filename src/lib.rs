//! dealscore — opportunity scoring for Sales Ops.
pub mod config;
pub mod domain;
pub mod error;
pub mod generate;
