//! `dealscore-train`: the training job analysts and schedulers run. All logic lives in the
//! library (`dealscore::train_cli`), shared with the server's retrain endpoint.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = dealscore::train_cli::TrainArgs::parse();
    match dealscore::train_cli::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
