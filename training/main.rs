//! `dealscore-train`: the training job analysts and schedulers run, an alias of `dealscore train`.
//! All logic lives in the library (`dealscore::cli::train`), over the same training job as the
//! server's retrain endpoint.

use clap::Parser;
use dealscore::cli::train::{self, TrainCommand};
use dealscore::config::LogFormat;

// The same allocator as the `dealscore` binary, whose `train` command this is: snapshot training
// reads millions of small values (a deal's activities, changes and snapshots), and under glibc's
// malloc its arena bookkeeping took about a sixth of the load's CPU (docs/performance.md,
// "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let command = TrainCommand::parse();
    match train::run(command.config.as_deref(), LogFormat::Human, command.args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
