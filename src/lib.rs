//! dealscore — opportunity scoring for Sales Ops.
pub mod config;
pub mod domain;
pub mod error;
pub mod features;
pub mod model;
pub mod training;
