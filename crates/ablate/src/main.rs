//! `ablate`: the ionode command-line program.
//!
//! The binary is laid out like ripgrep's: this file only parses arguments, starts logging,
//! dispatches and turns an error into one line on stderr and an exit code. Everything a
//! command does lives in [`commands`]; the library crates never print or exit.

mod cli;
mod commands;
mod h5;
mod ions;
mod json;
mod limits;
mod logging;
mod manifest;
mod output;
mod provenance;
mod report;
mod runner;
mod store;
mod tabular;
mod units;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.verbose);
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", commands::one_line(&err));
            ExitCode::from(commands::exit_code(&err))
        }
    }
}
