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
