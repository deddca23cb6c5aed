//! The `dealscore` binary: parse the command line, run it, exit non-zero with a readable message
//! on failure.

use clap::Parser;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = dealscore::cli::Cli::parse();
    match dealscore::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
