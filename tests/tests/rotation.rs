//! Key rotation with `signet key rotate`: consumers that trust an old root follow the chain,
//! and metadata signed by rotated-out keys is refused.

use serde_json::Value;
use signet_tests::cli::{ok, signet};
use signet_tests::{fresh_database, ServerProcess};

const DIGEST: &str = "sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de";

struct Setup {
    server: ServerProcess,
    db: String,
    publisher: tempfile::TempDir,
    root_file: std::path::PathBuf,
}

/// A repository with one signed tag, and the exported root version 1.
async fn setup() -> Setup {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &["--cache-ttl", "0s"]).unwrap();
    let publisher = tempfile::tempdir().unwrap();
    let url = &server.base_url;
    ok(signet(url, publisher.path(), &["init", "team/app"]));
    ok(signet(url, publisher.path(), &["sign", "team/app:v1", "--digest", DIGEST, "--size", "10"]));
    let root = ok(signet(url, publisher.path(), &["trust", "export", "team/app"])).stdout;
    let root_file = publisher.path().join("root-v1.json");
    std::fs::write(&root_file, root).unwrap();
    Setup { server, db, publisher, root_file }
}

fn consumer(setup: &Setup) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    ok(signet(&setup.server.base_url, home.path(), &["trust", "import", "team/app", setup.root_file.to_str().unwrap()]));
    home
}

async fn current_root_version(setup: &Setup) -> u64 {
    let url = format!("{}/v2/docker.io/team/app/_trust/tuf/root.json", setup.server.base_url);
    let root: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    root["signed"]["version"].as_u64().unwrap()
}

#[tokio::test]
async fn consumer_follows_root_and_targets_rotations() {
    let setup = setup().await;
    let url = &setup.server.base_url;
    let home = consumer(&setup);
    ok(signet(url, home.path(), &["lookup", "team/app:v1"]));

    for _ in 0..3 {
        ok(signet(url, setup.publisher.path(), &["key", "rotate", "team/app", "root"]));
    }
    ok(signet(url, setup.publisher.path(), &["key", "rotate", "team/app", "targets"]));
    assert_eq!(current_root_version(&setup).await, 5);

    // A consumer that still trusts root version 1 walks the chain.
    let fresh = consumer(&setup);
    let lookup = ok(signet(url, fresh.path(), &["lookup", "team/app:v1"]));
    assert!(lookup.stdout.contains(DIGEST), "{}", lookup.stdout);
    let lookup = ok(signet(url, home.path(), &["lookup", "team/app:v1"]));
    assert!(lookup.stdout.contains(DIGEST), "{}", lookup.stdout);

    // The publisher signs with the new targets key.
    ok(signet(url, setup.publisher.path(), &["sign", "team/app:v2", "--digest", DIGEST, "--size", "10"]));
    ok(signet(url, home.path(), &["lookup", "team/app:v2"]));
}

/// The stale file is refused by the snapshot's hash before its signature is checked; the
/// signature check against the new targets key has its own unit test in core.
#[tokio::test]
async fn old_targets_file_refused_after_rotation() {
    let setup = setup().await;
    let url = &setup.server.base_url;
    let targets_before: Vec<u8> = reqwest::get(format!("{url}/v2/docker.io/team/app/_trust/tuf/targets.json")).await.unwrap().bytes().await.unwrap().to_vec();
    ok(signet(url, setup.publisher.path(), &["key", "rotate", "team/app", "targets"]));

    // The server now serves, as the current targets, a file signed by the rotated-out key.
    let pool = sqlx::PgPool::connect(&setup.db).await.unwrap();
    let version: i64 = sqlx::query_scalar("SELECT max(version) FROM tuf_files WHERE role = 'targets'").fetch_one(&pool).await.unwrap();
    sqlx::query("UPDATE tuf_files SET data = $1 WHERE role = 'targets' AND version = $2").bind(&targets_before).bind(version).execute(&pool).await.unwrap();
    pool.close().await;

    let home = consumer(&setup);
    let lookup = signet(url, home.path(), &["lookup", "team/app:v1"]);
    assert_eq!(lookup.code, 3, "{}", lookup.stderr);
}

#[tokio::test]
async fn old_timestamp_key_refused_after_rotation() {
    let setup = setup().await;
    let url = &setup.server.base_url;
    let timestamp_url = format!("{url}/v2/docker.io/team/app/_trust/tuf/timestamp.json");
    let old_timestamp = reqwest::get(&timestamp_url).await.unwrap().bytes().await.unwrap().to_vec();
    ok(signet(url, setup.publisher.path(), &["key", "rotate", "team/app", "timestamp"]));
    let home = consumer(&setup);
    ok(signet(url, home.path(), &["lookup", "team/app:v1"]));

    // Serve the timestamp signed by the old key as the newest version.
    let pool = sqlx::PgPool::connect(&setup.db).await.unwrap();
    let version: i64 = sqlx::query_scalar("SELECT max(version) FROM tuf_files WHERE role = 'timestamp'").fetch_one(&pool).await.unwrap();
    sqlx::query("UPDATE tuf_files SET data = $1 WHERE role = 'timestamp' AND version = $2").bind(&old_timestamp).bind(version).execute(&pool).await.unwrap();
    pool.close().await;

    let fresh = consumer(&setup);
    let lookup = signet(url, fresh.path(), &["lookup", "team/app:v1"]);
    assert_eq!(lookup.code, 3, "{}", lookup.stderr);
    assert!(lookup.stderr.contains("timestamp"), "{}", lookup.stderr);
}

#[tokio::test]
async fn pending_server_key_survives_restart() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &[]).unwrap();
    let publisher = tempfile::tempdir().unwrap();
    ok(signet(&server.base_url, publisher.path(), &["init", "team/app"]));

    let client = reqwest::Client::new();
    let rotate_url = format!("{}/v2/docker.io/team/app/_trust/tuf/timestamp.key", server.base_url);
    let pending: Value = client.post(&rotate_url).send().await.unwrap().json().await.unwrap();
    let again: Value = client.post(&rotate_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(pending, again, "a second rotation request returns the same pending key");

    // Until a root lists the pending key, the server signs with the current one, which the
    // trusted root lists.
    ok(signet(&server.base_url, publisher.path(), &["sign", "team/app:before", "--digest", DIGEST, "--size", "10"]));
    let consumer = tempfile::tempdir().unwrap();
    ok(signet(&server.base_url, consumer.path(), &["lookup", "team/app:before", "--trust-on-first-use"]));
    assert!(server.stop().unwrap().success());

    let server = ServerProcess::start(&db, &[]).unwrap();
    let rotated = ok(signet(&server.base_url, publisher.path(), &["key", "rotate", "team/app", "timestamp"]));
    assert_eq!(rotated.stdout.trim(), signet_core::keys::key_id(&pending).unwrap());
    let current: Value = client
        .get(format!("{}/v2/docker.io/team/app/_trust/tuf/timestamp.key", server.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current, pending, "the server now signs with the rotated key");
    ok(signet(&server.base_url, publisher.path(), &["sign", "team/app:v1", "--digest", DIGEST, "--size", "10"]));
}

#[tokio::test]
async fn server_rejects_rotation_without_root() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &[]).unwrap();
    let response = reqwest::Client::new().post(format!("{}/v2/team/none/_trust/tuf/timestamp.key", server.base_url)).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

/// Generates a root key in `home` and writes its public key object to a file; returns the
/// key id and the file.
fn root_key_in(setup: &Setup, home: &std::path::Path) -> (String, std::path::PathBuf) {
    let url = &setup.server.base_url;
    let key_id = ok(signet(url, home, &["key", "generate", "--role", "root", "--gun", "team/app"])).stdout.trim().to_owned();
    let public = ok(signet(url, home, &["key", "export", "--public", &key_id])).stdout;
    let file = home.join(format!("{key_id}.pub.json"));
    std::fs::write(&file, public).unwrap();
    (key_id, file)
}

#[tokio::test]
async fn two_of_three_root_signed_on_separate_homes() {
    let setup = setup().await;
    let url = &setup.server.base_url;
    let second = tempfile::tempdir().unwrap();
    let third = tempfile::tempdir().unwrap();
    let (_, second_key) = root_key_in(&setup, second.path());
    let (_, third_key) = root_key_in(&setup, third.path());

    // Root version 2: three root keys, threshold 2. The current root (one key) signs it, and so
    // does the second key holder.
    let next = setup.publisher.path().join("root-v2.json");
    let next_arg = next.to_str().unwrap();
    ok(signet(url, setup.publisher.path(), &[
        "root", "edit", "team/app", "--file", next_arg,
        "--add-key", second_key.to_str().unwrap(), "--add-key", third_key.to_str().unwrap(), "--threshold", "2",
    ]));
    ok(signet(url, setup.publisher.path(), &["root", "sign", next_arg]));
    let shared = second.path().join("root-v2.json");
    std::fs::copy(&next, &shared).unwrap();
    ok(signet(url, second.path(), &["root", "sign", shared.to_str().unwrap()]));
    ok(signet(url, setup.publisher.path(), &["root", "publish", "team/app", shared.to_str().unwrap()]));
    assert_eq!(current_root_version(&setup).await, 2);

    // Root version 3 with one signature is refused, with two it is published.
    let v3 = setup.publisher.path().join("root-v3.json");
    let v3_arg = v3.to_str().unwrap();
    ok(signet(url, setup.publisher.path(), &["root", "edit", "team/app", "--file", v3_arg]));
    ok(signet(url, setup.publisher.path(), &["root", "sign", v3_arg]));
    let refused = signet(url, setup.publisher.path(), &["root", "publish", "team/app", v3_arg]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("threshold is 2"), "{}", refused.stderr);
    assert_eq!(current_root_version(&setup).await, 2);

    let shared = third.path().join("root-v3.json");
    std::fs::copy(&v3, &shared).unwrap();
    ok(signet(url, third.path(), &["root", "sign", shared.to_str().unwrap()]));
    ok(signet(url, setup.publisher.path(), &["root", "publish", "team/app", shared.to_str().unwrap()]));
    assert_eq!(current_root_version(&setup).await, 3);

    // A consumer on root version 1 follows the chain through the 2-of-3 roots.
    let home = consumer(&setup);
    ok(signet(url, home.path(), &["lookup", "team/app:v1"]));
}

#[tokio::test]
async fn resign_extends_expiring_targets() {
    let setup = setup().await;
    let url = &setup.server.base_url;
    ok(signet(url, setup.publisher.path(), &["sign", "team/app:v2", "--digest", DIGEST, "--size", "10", "--expires", "2d"]));

    let status = ok(signet(url, setup.publisher.path(), &["status", "team/app", "--output", "json"]));
    let value: Value = serde_json::from_str(&status.stdout).unwrap();
    let targets = value["roles"].as_array().unwrap().iter().find(|r| r["role"] == "targets").unwrap().clone();
    assert_eq!(targets["expires_soon"], true, "{value}");
    assert!(status.stderr.contains("warning: targets"), "{}", status.stderr);
    // The server re-signs timestamp and snapshot; their short lifetimes are not a warning.
    assert!(!status.stderr.contains("warning: timestamp"), "{}", status.stderr);
    assert!(!status.stderr.contains("warning: snapshot"), "{}", status.stderr);

    ok(signet(url, setup.publisher.path(), &["resign", "team/app", "targets", "--expires", "90d"]));
    let status = ok(signet(url, setup.publisher.path(), &["status", "team/app", "--output", "json"]));
    let value: Value = serde_json::from_str(&status.stdout).unwrap();
    let targets = value["roles"].as_array().unwrap().iter().find(|r| r["role"] == "targets").unwrap().clone();
    assert_eq!(targets["expires_soon"], false, "{value}");
    assert_eq!(targets["version"], 4, "init, two signs and the re-sign: {value}");

    let home = consumer(&setup);
    ok(signet(url, home.path(), &["lookup", "team/app:v2"]));
}

#[tokio::test]
async fn snapshot_key_moves_to_client_and_back() {
    let setup = setup().await;
    let url = &setup.server.base_url;
    let env = [
        ("SIGNET_ROOT_PASSPHRASE", signet_tests::cli::ROOT_PASSPHRASE),
        ("SIGNET_TARGETS_PASSPHRASE", signet_tests::cli::TARGETS_PASSPHRASE),
        ("SIGNET_SNAPSHOT_PASSPHRASE", "snapshot passphrase"),
    ];
    let home = consumer(&setup);

    ok(signet_tests::cli::signet_with(url, setup.publisher.path(), &["key", "rotate", "team/app", "snapshot", "--local"], &env));
    ok(signet_tests::cli::signet_with(url, setup.publisher.path(), &["sign", "team/app:v2", "--digest", DIGEST, "--size", "10"], &env));
    ok(signet(url, home.path(), &["lookup", "team/app:v2"]));
    let snapshot_key = reqwest::get(format!("{url}/v2/docker.io/team/app/_trust/tuf/snapshot.key")).await.unwrap();
    assert_eq!(snapshot_key.status(), 404, "the server holds no snapshot key while the client does");

    ok(signet_tests::cli::signet_with(url, setup.publisher.path(), &["key", "rotate", "team/app", "snapshot"], &env));
    ok(signet(url, setup.publisher.path(), &["sign", "team/app:v3", "--digest", DIGEST, "--size", "10"]));
    ok(signet(url, home.path(), &["lookup", "team/app:v3"]));
}

#[tokio::test]
async fn server_reports_role_expiry() {
    let setup = setup().await;
    let url = &setup.server.base_url;
    ok(signet(url, setup.publisher.path(), &["sign", "team/app:v2", "--digest", DIGEST, "--size", "10", "--expires", "3d"]));

    let metrics = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    let line = metrics
        .lines()
        .find(|line| line.starts_with("signet_metadata_expires_timestamp_seconds{gun=\"docker.io/team/app\",role=\"targets\"}"))
        .unwrap_or_else(|| panic!("no targets expiry in:\n{metrics}"));
    let expires: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let in_three_days = chrono::Utc::now().timestamp() + 3 * 86_400;
    assert!((expires - in_three_days).abs() < 120, "{line}");
    assert!(metrics.contains("role=\"timestamp\""), "{metrics}");
}

#[tokio::test]
async fn server_logs_expiring_client_roles() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &["--resign-interval", "1s"]).unwrap();
    let publisher = tempfile::tempdir().unwrap();
    let url = &server.base_url;
    ok(signet(url, publisher.path(), &["init", "team/app", "--expires", "5d"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !server.logs().contains("client-held role expires soon") {
        assert!(std::time::Instant::now() < deadline, "no expiry warning in:\n{}", server.logs());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    // One warning per role version, not one per pass.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let warnings = server.logs().matches("client-held role expires soon").count();
    assert_eq!(warnings, 2, "root and targets, once each:\n{}", server.logs());
}
