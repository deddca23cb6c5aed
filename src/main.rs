//! The `dealscore` binary: parse the command line, run it, exit non-zero with a readable message
//! on failure.

use clap::Parser;

// The server allocates many small, short-lived strings and JSON values per request (sentences,
// factor lists) across worker threads; mimalloc serves those faster than glibc's malloc, whose
// arena bookkeeping showed up as ~15 % of the scoring endpoint's CPU profile (docs/performance.md,
// "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = dealscore::cli::Cli::parse();
    match dealscore::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(dealscore::cli::exit_code(&e))
        }
    }
}
