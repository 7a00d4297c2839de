//! `signet-tuf-client`, the conformance adapter: init, refresh and download against a real
//! server, with targets served by a static file server on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use signet_tests::metadata::*;
use signet_tests::{conformance_binary, fresh_database, ServerProcess};

const GUN: &str = "example.com/team/files";

fn adapter(args: &[&str]) -> (i32, String) {
    let output = Command::new(conformance_binary()).args(args).output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A static file server for `dir`, stopped on drop.
struct FileServer {
    child: Child,
    url: String,
}

impl FileServer {
    fn start(dir: &Path) -> FileServer {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0", "--directory"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line.split("port ").nth(1).and_then(|rest| rest.split_whitespace().next()).expect("port in the server's first line");
        FileServer { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn init_refresh_and_download() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &[]).unwrap();
    let client = Client::new(&server.base_url);
    let repo = Repo::init(&client, GUN).await;

    // A target file served under its consistent-snapshot name, files/HASH.hello.txt.
    let content = b"hello from a signed target\n";
    let sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, content));
    let served = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(served.path().join("files")).unwrap();
    std::fs::write(served.path().join(format!("files/{sha256}.hello.txt")), content).unwrap();
    let (status, body) = client.upload(GUN, &[("targets", repo.targets_bytes(2, &[("files/hello.txt", &sha256, content.len() as u64)]))]).await;
    assert_eq!(status, 200, "{body}");
    let files = FileServer::start(served.path());

    let work = tempfile::tempdir().unwrap();
    let metadata_dir = work.path().join("metadata");
    let target_dir = work.path().join("targets");
    let root_file = work.path().join("root.json");
    let root = client.get(GUN, "1.root.json").await.bytes().await.unwrap();
    std::fs::write(&root_file, &root).unwrap();
    let metadata_dir_arg = metadata_dir.to_str().unwrap();
    let metadata_url = format!("{}/v2/{GUN}/_trust/tuf", server.base_url);

    let (code, stderr) = adapter(&["--metadata-dir", metadata_dir_arg, "init", root_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read(metadata_dir.join("root.json")).unwrap(), root.to_vec());

    let (code, stderr) = adapter(&["--metadata-url", &metadata_url, "--metadata-dir", metadata_dir_arg, "refresh"]);
    assert_eq!(code, 0, "{stderr}");
    let served_targets = client.get(GUN, "targets.json").await.bytes().await.unwrap();
    assert_eq!(std::fs::read(metadata_dir.join("targets.json")).unwrap(), served_targets.to_vec(), "exact served bytes");
    assert!(metadata_dir.join("timestamp.json").exists());
    assert!(metadata_dir.join("snapshot.json").exists());

    let download = |name: &str| {
        adapter(&[
            "--metadata-url", &metadata_url, "--metadata-dir", metadata_dir_arg,
            "--target-name", name, "--target-dir", target_dir.to_str().unwrap(), "--target-base-url", &files.url, "download",
        ])
    };
    let (code, stderr) = download("files/hello.txt");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read(target_dir.join("files%2Fhello.txt")).unwrap(), content);

    let (code, _) = download("files/missing.txt");
    assert_eq!(code, 1);

    // A served file that differs from the signed hashes is rejected.
    std::fs::remove_file(target_dir.join("files%2Fhello.txt")).unwrap();
    std::fs::write(served.path().join(format!("files/{sha256}.hello.txt")), b"hello from a forged target!\n").unwrap();
    let (code, stderr) = download("files/hello.txt");
    assert_eq!(code, 1, "{stderr}");
    assert!(!target_dir.join("files%2Fhello.txt").exists());
}

#[tokio::test]
async fn init_rejects_unsigned_root() {
    let work = tempfile::tempdir().unwrap();
    let root_file = work.path().join("root.json");
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &[]).unwrap();
    let client = Client::new(&server.base_url);
    let repo = Repo::new(&client, GUN).await;
    std::fs::write(&root_file, sign(&repo.root(1), &[])).unwrap();
    let (code, stderr) = adapter(&["--metadata-dir", work.path().join("m").to_str().unwrap(), "init", root_file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("threshold"), "{stderr}");
}
