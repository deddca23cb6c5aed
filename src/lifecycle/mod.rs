//! Model lifecycle: training runs over HTTP, the promotion gate, comparing versions, scheduled
//! retraining. Operations guide: docs/operations.md.

pub mod background;
pub mod backtest;
pub mod compare;
pub mod cut_points;
pub mod default_plan;
pub mod gate;
pub mod holdout;
pub mod point_in_time;
pub mod registry;
pub mod runner;
pub mod schedule;
pub mod snapshots;
pub mod train_job;
pub mod unchanged;
