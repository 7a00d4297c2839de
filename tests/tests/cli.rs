//! The `signet` command end to end: a publisher signs tags on one home, a consumer that holds
//! only the exported root verifies them from another.

use std::process::Command;

use signet_tests::cli::{ok, signet, signet_with};
use signet_tests::{fresh_database, ServerProcess};

/// Real digests of published images, from public Dockerfiles and documentation.
const NGINX_1_13_9: &str = "sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de";
const ALPINE_3_19: &str = "sha256:51b67269f354137895d43f3b3d810bfacd3945438e94dc5ac55fdac340352f48";
const ALPINE_3_19_MOVED: &str = "sha256:13b7e62e8df80264dbb747995705a986aa530415763a6c58f84a3ca8af9a5bcd";
const GOLANG_1_22: &str = "sha256:7eac856e4e0d79916b0ec7d4ccbeca2809441eea91449b15a4a8fb0398c840fa";

/// A server with `nginx` initialized by a publisher home; returns the consumer's root file.
async fn published() -> (ServerProcess, tempfile::TempDir, tempfile::TempDir) {
    let (server, publisher, consumer, _db) = published_with_database().await;
    (server, publisher, consumer)
}

/// Like [`published`], also returning the database URL for tests that tamper with it. The server
/// does not cache, so it serves what the database holds; its cache would otherwise keep serving
/// the newest version it saw, which hides a rollback made in the database.
async fn published_with_database() -> (ServerProcess, tempfile::TempDir, tempfile::TempDir, String) {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &["--cache-ttl", "0s"]).unwrap();
    let publisher = tempfile::tempdir().unwrap();
    let consumer = tempfile::tempdir().unwrap();
    let url = server.base_url.clone();

    let init = ok(signet(&url, publisher.path(), &["init", "nginx"]));
    assert_eq!(init.stdout.trim().len(), 64, "root key id: {}", init.stdout);
    ok(signet(&url, publisher.path(), &["sign", "nginx:1.13.9", "--digest", NGINX_1_13_9, "--size", "1570"]));
    ok(signet(&url, publisher.path(), &["sign", "nginx:alpine", "--digest", ALPINE_3_19, "--size", "528", "--no-publish"]));
    ok(signet(&url, publisher.path(), &["sign", "nginx:golang", "--digest", GOLANG_1_22, "--size", "2000", "--no-publish"]));
    let status = ok(signet(&url, publisher.path(), &["status", "nginx"]));
    assert!(status.stdout.contains("alpine"), "{}", status.stdout);
    ok(signet(&url, publisher.path(), &["publish", "nginx"]));

    let export = ok(signet(&url, publisher.path(), &["trust", "export", "nginx"]));
    let root_file = consumer.path().join("root.json");
    std::fs::write(&root_file, export.stdout.as_bytes()).unwrap();
    ok(signet(&url, consumer.path(), &["trust", "import", "nginx", root_file.to_str().unwrap()]));
    (server, publisher, consumer, db)
}

#[tokio::test]
async fn consumer_verifies_published_tags() {
    let (server, _publisher, consumer) = published().await;
    let url = &server.base_url;

    let lookup = ok(signet(url, consumer.path(), &["lookup", "nginx:1.13.9"]));
    assert_eq!(lookup.stdout.trim(), format!("docker.io/library/nginx@{NGINX_1_13_9}"));

    let json = ok(signet(url, consumer.path(), &["lookup", "docker.io/library/nginx:alpine", "--output", "json"]));
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["digest"], ALPINE_3_19);
    assert_eq!(value["size"], 528);

    ok(signet(url, consumer.path(), &["verify", "nginx:golang", "--digest", GOLANG_1_22]));
    let list = ok(signet(url, consumer.path(), &["list", "nginx"]));
    assert_eq!(list.stdout.lines().count(), 3, "{}", list.stdout);
}

#[tokio::test]
async fn untrusted_results_exit_3() {
    let (server, _publisher, consumer) = published().await;
    let url = &server.base_url;

    let unsigned = signet(url, consumer.path(), &["lookup", "nginx:unsigned"]);
    assert_eq!(unsigned.code, 3, "{}", unsigned.stderr);
    assert!(unsigned.stderr.contains("is not signed"), "{}", unsigned.stderr);

    let moved = signet(url, consumer.path(), &["verify", "nginx:alpine", "--digest", ALPINE_3_19_MOVED]);
    assert_eq!(moved.code, 3, "{}", moved.stderr);
    assert!(moved.stderr.contains("is signed as"), "{}", moved.stderr);
}

#[tokio::test]
async fn new_digest_seen_after_publish() {
    let (server, publisher, consumer) = published().await;
    let url = &server.base_url;
    ok(signet(url, consumer.path(), &["lookup", "nginx:alpine"]));
    ok(signet(url, publisher.path(), &["sign", "nginx:alpine", "--digest", ALPINE_3_19_MOVED, "--size", "529"]));
    let lookup = ok(signet(url, consumer.path(), &["lookup", "nginx:alpine"]));
    assert!(lookup.stdout.contains(ALPINE_3_19_MOVED), "{}", lookup.stdout);

    ok(signet(url, publisher.path(), &["unsign", "nginx:alpine"]));
    assert_eq!(signet(url, consumer.path(), &["lookup", "nginx:alpine"]).code, 3);
}

#[tokio::test]
async fn clear_errors_for_operational_failures() {
    let (server, publisher, _consumer) = published().await;
    let url = &server.base_url;

    let fresh = tempfile::tempdir().unwrap();
    let no_root = signet(url, fresh.path(), &["lookup", "nginx:1.13.9"]);
    assert_eq!(no_root.code, 2, "{}", no_root.stderr);
    assert!(no_root.stderr.contains("signet trust import"), "{}", no_root.stderr);

    let wrong = signet_with(
        url,
        publisher.path(),
        &["sign", "nginx:x", "--digest", NGINX_1_13_9, "--size", "1"],
        &[("SIGNET_TARGETS_PASSPHRASE", "not the passphrase")],
    );
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("wrong passphrase"), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains("not the passphrase"), "the passphrase must not be printed");
    // The failed sign leaves nothing staged for a later publish.
    let status = ok(signet(url, publisher.path(), &["status", "nginx", "--output", "json"]));
    let value: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(value["staged"], serde_json::json!([]), "{value}");

    let unreachable = signet("http://127.0.0.1:9", publisher.path(), &["lookup", "nginx:1.13.9"]);
    assert_eq!(unreachable.code, 1, "{}", unreachable.stderr);
    assert!(unreachable.stderr.contains("cannot reach the server"), "{}", unreachable.stderr);

    let usage = signet(url, publisher.path(), &["lookup", "Not A Reference"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}

#[tokio::test]
async fn concurrent_signers_all_land() {
    let (server, publisher, consumer) = published().await;
    let url = server.base_url.clone();
    let mut children = Vec::new();
    for i in 0..8 {
        let url = url.clone();
        let home = publisher.path().to_owned();
        // Each process gets its own copy of the publisher's home (same keys and trusted root), as
        // publishers on separate machines would have; they share only the server.
        let own_home = tempfile::tempdir().unwrap();
        let copied = Command::new("cp").arg("-a").arg(format!("{}/.", home.display())).arg(own_home.path()).status().unwrap();
        assert!(copied.success());
        children.push(std::thread::spawn(move || {
            let tag = format!("nginx:parallel-{i}");
            let run = signet(&url, own_home.path(), &["sign", &tag, "--digest", NGINX_1_13_9, "--size", "1570"]);
            (run, own_home)
        }));
    }
    for child in children {
        let (run, _home) = child.join().unwrap();
        ok(run);
    }
    let list = ok(signet(&url, consumer.path(), &["list", "nginx"]));
    for i in 0..8 {
        assert!(list.stdout.contains(&format!("parallel-{i}\t")), "parallel-{i} missing:\n{}", list.stdout);
    }
}

#[tokio::test]
async fn trust_on_first_use_warns() {
    let (server, _publisher, _consumer) = published().await;
    let fresh = tempfile::tempdir().unwrap();
    let lookup = ok(signet(&server.base_url, fresh.path(), &["lookup", "nginx:1.13.9", "--trust-on-first-use"]));
    assert!(lookup.stderr.contains("warning: --trust-on-first-use"), "{}", lookup.stderr);
    assert!(lookup.stdout.contains(NGINX_1_13_9));
    // The root is stored now, so the next lookup needs no flag and prints no warning.
    let again = ok(signet(&server.base_url, fresh.path(), &["lookup", "nginx:1.13.9"]));
    assert!(!again.stderr.contains("warning"), "{}", again.stderr);
}

#[tokio::test]
async fn keys_listed_exported_and_deleted_remotely() {
    let (server, publisher, consumer) = published().await;
    let url = &server.base_url;
    let keys = ok(signet(url, publisher.path(), &["key", "list", "--output", "json"]));
    let value: serde_json::Value = serde_json::from_str(&keys.stdout).unwrap();
    let roles: Vec<&str> = value["keys"].as_array().unwrap().iter().map(|k| k["role"].as_str().unwrap()).collect();
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert!(roles.contains(&"root"), "{roles:?}");
    assert!(roles.contains(&"targets"), "{roles:?}");

    let key_id = value["keys"][0]["key_id"].as_str().unwrap().to_owned();
    let pem = ok(signet(url, publisher.path(), &["key", "export", &key_id]));
    assert!(pem.stdout.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"), "{}", pem.stdout);
    assert!(!keys.stdout.contains("PRIVATE"), "key list must not print private keys");

    ok(signet(url, publisher.path(), &["delete", "nginx", "--remote"]));
    let deleted = signet(url, consumer.path(), &["lookup", "nginx:1.13.9"]);
    assert_ne!(deleted.code, 0, "{}", deleted.stderr);
}

async fn execute(database_url: &str, sql: &str) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    sqlx::query(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn tampered_metadata_exits_3() {
    let (server, _publisher, consumer, db) = published_with_database().await;
    let hex = NGINX_1_13_9.trim_start_matches("sha256:");
    let forged = ALPINE_3_19.trim_start_matches("sha256:");
    execute(&db, &format!("UPDATE tuf_files SET data = convert_to(replace(convert_from(data, 'UTF8'), '{hex}', '{forged}'), 'UTF8') WHERE role = 'targets'")).await;
    let lookup = signet(&server.base_url, consumer.path(), &["lookup", "nginx:1.13.9"]);
    assert_eq!(lookup.code, 3, "{}", lookup.stderr);
    assert!(lookup.stderr.contains("failed verification"), "{}", lookup.stderr);
}

#[tokio::test]
async fn rolled_back_timestamp_exits_3() {
    let (server, publisher, consumer, db) = published_with_database().await;
    let url = &server.base_url;
    ok(signet(url, publisher.path(), &["sign", "nginx:extra", "--digest", GOLANG_1_22, "--size", "1"]));
    ok(signet(url, consumer.path(), &["lookup", "nginx:extra"]));
    execute(&db, "DELETE FROM tuf_files WHERE role = 'timestamp' AND version > 1").await;
    let lookup = signet(url, consumer.path(), &["lookup", "nginx:1.13.9"]);
    assert_eq!(lookup.code, 3, "{}", lookup.stderr);
    assert!(lookup.stderr.contains("rollback"), "{}", lookup.stderr);
}
