//! `dealscore-train`: the training job analysts and schedulers run, an alias of `dealscore train`.
//! All logic lives in the library (`dealscore::cli::train`), over the same training job as the
//! server's retrain endpoint.

use clap::Parser;
use dealscore::cli::train::{self, TrainCommand};
use dealscore::config::LogFormat;

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
