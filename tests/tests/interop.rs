//! Interoperability with python-tuf, an implementation we did not write: it publishes a
//! repository through the API and its `ngclient.Updater` verifies what the server serves.

use std::path::PathBuf;
use std::process::Command;

use signet_tests::{fresh_database, ServerProcess};

/// Returns the Python that has `tuf` installed: `SIGNET_TEST_PYTHON`, else the workspace's `.venv`, which
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

#[tokio::test]
async fn python_tuf_verifies_signet_repository() {
    use signet_tests::cli::{ok, signet};
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &[]).unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = &server.base_url;
    let digest = "4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de";

    ok(signet(url, home.path(), &["init", "nginx"]));
    ok(signet(url, home.path(), &["sign", "nginx:1.13.9", "--digest", &format!("sha256:{digest}"), "--size", "1570"]));
    let root = ok(signet(url, home.path(), &["trust", "export", "nginx"]));
    let root_file = home.path().join("exported-root.json");
    std::fs::write(&root_file, root.stdout.as_bytes()).unwrap();

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/python_tuf_verify.py");
    let output = Command::new(python())
        .arg(&script)
        .args(["--server", url, "--gun", "docker.io/library/nginx", "--target", "1.13.9", "--sha256", digest, "--length", "1570", "--root"])
        .arg(&root_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("python-tuf: verified 1.13.9"), "{stdout}");
}

#[tokio::test]
async fn signet_verifies_python_tuf_repository() {
    use signet_tests::cli::{ok, signet};
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &[]).unwrap();
    let workdir = tempfile::tempdir().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/python_tuf_roundtrip.py");
    let gun = "registry.example.com/team/app";
    let output = Command::new(python())
        .arg(&script)
        .args(["--server", &server.base_url, "--gun", gun, "--workdir"])
        .arg(workdir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));

    // The consumer trusts root version 1 as python-tuf wrote it.
    let root = reqwest::get(format!("{}/v2/{gun}/_trust/tuf/1.root.json", server.base_url)).await.unwrap().bytes().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let root_file = home.path().join("root.json");
    std::fs::write(&root_file, &root).unwrap();
    let lookup = ok(signet(&server.base_url, home.path(), &["lookup", &format!("{gun}:1.13.9"), "--root", root_file.to_str().unwrap()]));
    assert_eq!(
        lookup.stdout.trim(),
        format!("{gun}@sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de")
    );
}
