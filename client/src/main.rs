//! The `signet` command: publish and verify signed tag-to-digest mappings.
//!
//! Exit codes: 0 verified or done; 1 operational failure (network, server error, I/O, wrong
//! passphrase); 2 usage error (including a missing trusted root); 3 not trusted (the tag is not
//! signed, the digest differs, or the metadata failed verification).

mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.exit_code())
        }
    }
}
