//! Running the `signet` command in tests.

use std::path::Path;
use std::process::{Command, Output};

use crate::client_binary;

pub const ROOT_PASSPHRASE: &str = "correct horse root";
pub const TARGETS_PASSPHRASE: &str = "correct horse targets";

/// Exit code and output of one `signet` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `signet` with the test passphrases in its environment.
pub fn signet(server: &str, home: &Path, args: &[&str]) -> Run {
    signet_with(server, home, args, &[("SIGNET_ROOT_PASSPHRASE", ROOT_PASSPHRASE), ("SIGNET_TARGETS_PASSPHRASE", TARGETS_PASSPHRASE)])
}

/// Runs `signet` with exactly the given passphrase variables.
pub fn signet_with(server: &str, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(client_binary());
    command.arg("--server").arg(server).arg("--home").arg(home).args(args);
    command.env_remove("SIGNET_ROOT_PASSPHRASE").env_remove("SIGNET_TARGETS_PASSPHRASE").env_remove("SIGNET_SERVER");
    for (name, value) in env {
        command.env(name, value);
    }
    let Output { status, stdout, stderr } = command.output().expect("run signet");
    Run { code: status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&stdout).into_owned(), stderr: String::from_utf8_lossy(&stderr).into_owned() }
}

/// Runs `signet` with the test passphrases and `input` on its standard input.
pub fn signet_input(server: &str, home: &Path, args: &[&str], input: &str) -> Run {
    use std::io::Write;
    use std::process::Stdio;
    let mut command = Command::new(client_binary());
    command.arg("--server").arg(server).arg("--home").arg(home).args(args);
    command.env_remove("SIGNET_SERVER").env("SIGNET_ROOT_PASSPHRASE", ROOT_PASSPHRASE).env("SIGNET_TARGETS_PASSPHRASE", TARGETS_PASSPHRASE);
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("run signet");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    let Output { status, stdout, stderr } = child.wait_with_output().expect("wait for signet");
    Run { code: status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&stdout).into_owned(), stderr: String::from_utf8_lossy(&stderr).into_owned() }
}

/// Asserts that the run succeeded and returns it.
pub fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    run
}

