//! `ablate`: the ionode command-line program.
//!
//! The binary is laid out like ripgrep's: this file only parses arguments, starts logging,
//! dispatches and turns an error into one line on stderr and an exit code. Everything a
//! command does lives in the `ionode_ablate` library; the numerical crates never print or exit.

use clap::Parser;
use ionode_ablate::{cli, commands, interrupt, logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::exit_with(e),
    };
    logging::init(cli.verbose);
    interrupt::install();
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", commands::one_line(&err));
            ExitCode::from(commands::exit_code(&err))
        }
    }
}
