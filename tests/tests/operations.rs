//! Operating the server: restarts, database outages, several processes on one database,
//! background re-signing and pruning.

use std::time::{Duration, Instant};

use serde_json::Value;
use signet_tests::metadata::*;
use signet_tests::{fresh_database, ServerProcess, TestCluster, TEST_KEK};

#[tokio::test]
async fn data_survives_restart_with_external_database() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &[]).unwrap();
    let client = Client::new(&server.base_url);
    let repo = Repo::init(&client, "team/app").await;
    let root = client.get(&repo.gun, "root.json").await.bytes().await.unwrap();
    assert!(server.stop().unwrap().success(), "graceful exit on SIGTERM");

    let server = ServerProcess::start(&db, &[]).unwrap();
    let client = Client::new(&server.base_url);
    assert_eq!(client.get(&repo.gun, "root.json").await.bytes().await.unwrap(), root);
    // The server keys survived too: the next publish is signed with them.
    let (status, body) = client.upload(&repo.gun, &[("targets", repo.targets_bytes(2, &[]))]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn data_survives_restart_in_embedded_mode() {
    let data_dir = signet_tests::world_readable_tempdir().unwrap();
    let server = ServerProcess::start_in(data_dir, None, &[]).unwrap();
    let client = Client::new(&server.base_url);
    let repo = Repo::init(&client, "team/app").await;

    // A second process on the same data directory uses the running cluster.
    let migrate = std::process::Command::new(signet_tests::server_binary())
        .arg("migrate")
        .arg("--data-dir")
        .arg(server.data_dir.path())
        .env("SIGNET_KEY_ENCRYPTION_KEY", TEST_KEK)
        .output()
        .unwrap();
    assert!(migrate.status.success(), "migrate: {}", String::from_utf8_lossy(&migrate.stderr));

    let data_dir = server.stop_keep_data().unwrap();
    let server = ServerProcess::start_in(data_dir, None, &[]).unwrap();
    let client = Client::new(&server.base_url);
    assert_eq!(client.version(&repo.gun, "targets").await, 1);
    let (status, body) = client.upload(&repo.gun, &[("targets", repo.targets_bytes(2, &[]))]).await;
    assert_eq!(status, 200, "{body}");
    assert!(server.stop().unwrap().success());
}

#[tokio::test]
async fn database_outage_gives_503_then_recovers() {
    let cluster = TestCluster::dedicated().await.unwrap();
    let db = cluster.create_database().await.unwrap();
    let server = ServerProcess::start(&db, &["--cache-ttl", "0s", "--db-acquire-timeout", "1s"]).unwrap();
    let client = Client::new(&server.base_url);
    let repo = Repo::init(&client, "team/app").await;

    cluster.postgres.pause().await.unwrap();
    let response = client.get(&repo.gun, "timestamp.json").await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(client.http.get(server.url("/readyz")).send().await.unwrap().status(), 503);
    let (status, _) = client.upload(&repo.gun, &[("targets", repo.targets_bytes(2, &[]))]).await;
    assert_eq!(status, 503);

    cluster.postgres.resume().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.get(&repo.gun, "timestamp.json").await.status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery after the database came back; last status {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = client.upload(&repo.gun, &[("targets", repo.targets_bytes(2, &[]))]).await;
    assert_eq!(status, 200, "{body}");
    assert!(!server.logs().contains("panicked"), "{}", server.logs());
}

#[tokio::test]
async fn second_server_sees_publish_within_cache_ttl() {
    let db = fresh_database().await.unwrap();
    let first = ServerProcess::start(&db, &[]).unwrap();
    let second = ServerProcess::start(&db, &[]).unwrap();
    let a = Client::new(&first.base_url);
    let b = Client::new(&second.base_url);
    let repo = Repo::init(&a, "team/app").await;

    let mut last_seen = 0;
    for version in 2..=6u64 {
        assert!(b.version(&repo.gun, "timestamp").await >= last_seen);
        let (status, body) = a.upload(&repo.gun, &[("targets", repo.targets_bytes(version, &[]))]).await;
        assert_eq!(status, 200, "{body}");
        // The default time to live is 100 ms; 150 ms leaves room for scheduling.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let seen = b.version(&repo.gun, "timestamp").await;
        assert!(seen >= version, "second server answered timestamp {seen} after publish of {version}");
        assert!(seen >= last_seen, "versions went backwards: {seen} after {last_seen}");
        last_seen = seen;
    }
}

#[tokio::test]
async fn timestamp_resigned_before_expiry_by_several_servers() {
    let db = fresh_database().await.unwrap();
    let args = ["--timestamp-lifetime", "10s", "--resign-interval", "1s"];
    let first = ServerProcess::start(&db, &args).unwrap();
    let second = ServerProcess::start(&db, &args).unwrap();
    let client = Client::new(&first.base_url);
    let repo = Repo::init(&client, "team/app").await;

    let deadline = Instant::now() + Duration::from_secs(30);
    while client.version(&repo.gun, "timestamp").await < 3 {
        assert!(Instant::now() < deadline, "timestamp was not re-signed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let timestamp: Value = client.get(&repo.gun, "timestamp.json").await.json().await.unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(timestamp["signed"]["expires"].as_str().unwrap()).unwrap();
    assert!(expires > chrono::Utc::now(), "current timestamp must not be expired");

    // Every version exists exactly once: no two processes wrote the same version.
    let feed: Value = client.http.get(first.url("/v2/team/app/_trust/changefeed?records=1000")).send().await.unwrap().json().await.unwrap();
    let versions: Vec<i64> = feed["records"].as_array().unwrap().iter().map(|r| r["version"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (1..=versions.len() as i64).collect();
    assert_eq!(versions, expected);
    drop(second);
}

#[tokio::test]
async fn superseded_timestamps_pruned_after_retention() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &["--retention", "0s", "--resign-interval", "1s"]).unwrap();
    let client = Client::new(&server.base_url);
    let repo = Repo::init(&client, "team/app").await;
    let (status, _) = client.upload(&repo.gun, &[("targets", repo.targets_bytes(2, &[]))]).await;
    assert_eq!(status, 200);

    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(&repo.gun, "1.timestamp.json").await.status() != 404 {
        assert!(Instant::now() < deadline, "superseded timestamp was not pruned");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(client.get(&repo.gun, "1.snapshot.json").await.status(), 404);
    assert_eq!(client.get(&repo.gun, "1.root.json").await.status(), 200, "root versions are kept");
    assert_eq!(client.get(&repo.gun, "1.targets.json").await.status(), 200, "targets versions are kept");
    assert_eq!(client.get(&repo.gun, "timestamp.json").await.status(), 200);
    assert_eq!(client.get(&repo.gun, "2.snapshot.json").await.status(), 200, "current snapshot is kept");
}

#[tokio::test]
async fn logs_contain_no_secrets() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &[]).unwrap();
    let client = Client::new(&server.base_url);
    let repo = Repo::init(&client, "team/app").await;
    let _ = client.upload(&repo.gun, &[("targets", b"{bad".to_vec())]).await;
    let logs = server.logs();
    assert!(logs.contains("published"), "{logs}");
    assert!(!logs.contains(TEST_KEK), "the key encryption key appeared in the log");
    assert!(!logs.to_lowercase().contains("private"), "{logs}");
}

#[tokio::test]
async fn invalid_configuration_exits_2() {
    let output = std::process::Command::new(signet_tests::server_binary())
        .args(["--timestamp-lifetime", "forever"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid duration"));
}
