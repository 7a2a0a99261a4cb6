//! `traftctl`: a traft cluster member and the operator's client in one binary.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
