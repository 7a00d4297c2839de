//! Interoperability with python-tuf, an implementation we did not write: it publishes a
//! repository through the API and its `ngclient.Updater` verifies what the server serves.

use std::path::PathBuf;
use std::process::Command;

use signet_tests::{fresh_database, ServerProcess};

/// The Python with `tuf` installed: `SIGNET_TEST_PYTHON`, else the workspace's `.venv`, which
/// `.ci/run` creates.
fn python() -> PathBuf {
    if let Ok(path) = std::env::var("SIGNET_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "python-tuf is missing: create the virtual environment with `python3 -m venv .venv && .venv/bin/pip install -r tests/interop/requirements.txt`, or set SIGNET_TEST_PYTHON"
    );
    venv
}

#[tokio::test]
async fn python_tuf_publishes_and_verifies() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &[]).unwrap();
    let workdir = tempfile::tempdir().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/python_tuf_roundtrip.py");

    let output = Command::new(python())
        .arg(&script)
        .args(["--server", &server.base_url, "--gun", "registry.example.com/team/app", "--workdir"])
        .arg(workdir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python-tuf interop failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}", server.logs());
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}
