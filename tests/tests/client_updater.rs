//! The client's TUF workflow against a real server: lookups, caching, and rejection of
//! tampered, rolled-back, expired and version-skipping metadata.

use chrono::Utc;
use signet_client::remote::Remote;
use signet_client::updater::{MetadataDir, UpdateError, Updater};
use signet_core::trusted::VerifyError;
use signet_core::Gun;
use signet_tests::metadata::*;
use signet_tests::{fresh_database, ServerProcess};

const GUN: &str = "docker.io/library/nginx";
const OTHER_DIGEST: &str = "abd67f4e1d1e3b8f5aa7c34b0a5d2e7d1d0f8e9f3c6a1b2c3d4e5f60718293a4";

struct Setup {
    server: ServerProcess,
    client: Client,
    repo: Repo,
    db: String,
    home: tempfile::TempDir,
}

async fn setup() -> Setup {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &["--cache-ttl", "0s"]).unwrap();
    let client = Client::new(&server.base_url);
    let repo = Repo::init(&client, GUN).await;
    Setup { server, client, repo, db, home: tempfile::tempdir().unwrap() }
}

impl Setup {
    fn updater(&self, root: Option<Vec<u8>>) -> Result<Updater, UpdateError> {
        self.updater_at(root, Utc::now())
    }

    fn updater_at(&self, root: Option<Vec<u8>>, now: chrono::DateTime<Utc>) -> Result<Updater, UpdateError> {
        let remote = Remote::new(&self.server.base_url, &Gun::parse(GUN).unwrap()).unwrap();
        Updater::new(remote, MetadataDir::new(self.home.path()), root, now)
    }

    async fn root_v1(&self) -> Vec<u8> {
        self.client.get(GUN, "1.root.json").await.bytes().await.unwrap().to_vec()
    }

    async fn execute(&self, sql: &str) {
        let pool = sqlx::PgPool::connect(&self.db).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }

    fn request_count(&self) -> usize {
        self.server.logs().lines().filter(|line| line.contains(" request ") || line.contains("\"request\"") || line.ends_with("request")).count()
    }
}

fn untrusted(result: Result<(), UpdateError>) -> UpdateError {
    let error = result.expect_err("update must fail");
    assert!(error.is_untrusted(), "expected a verification failure, got {error:?}");
    error
}

#[tokio::test]
async fn lookup_finds_signed_digest() {
    let setup = setup().await;
    let mut updater = setup.updater(Some(setup.root_v1().await)).unwrap();
    updater.refresh().await.unwrap();
    let (role, target) = updater.find_target("1.13.9").await.unwrap().expect("signed tag");
    assert_eq!(role.as_str(), "targets");
    assert_eq!(target.hashes["sha256"], NGINX_1_13_9);
    assert_eq!(target.length, 1570);
    assert!(updater.find_target("unsigned").await.unwrap().is_none());
}

#[tokio::test]
async fn warm_lookup_costs_two_requests() {
    let setup = setup().await;
    let mut updater = setup.updater(Some(setup.root_v1().await)).unwrap();
    updater.refresh().await.unwrap();

    let before = setup.request_count();
    let mut warm = setup.updater(None).unwrap();
    warm.refresh().await.unwrap();
    assert!(warm.find_target("1.13.9").await.unwrap().is_some());
    // Give the server a moment to write its request log lines.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(setup.request_count() - before, 2, "{}", setup.server.logs());
}

#[tokio::test]
async fn new_publish_seen_by_next_lookup() {
    let setup = setup().await;
    let mut updater = setup.updater(Some(setup.root_v1().await)).unwrap();
    updater.refresh().await.unwrap();

    let (status, body) = setup.client.upload(GUN, &[("targets", setup.repo.targets_bytes(2, &[("1.13.9", OTHER_DIGEST, 1600)]))]).await;
    assert_eq!(status, 200, "{body}");
    let mut updater = setup.updater(None).unwrap();
    updater.refresh().await.unwrap();
    let (_, target) = updater.find_target("1.13.9").await.unwrap().unwrap();
    assert_eq!(target.hashes["sha256"], OTHER_DIGEST);
}

#[tokio::test]
async fn indexed_lookup_stays_current() {
    let setup = setup().await;
    let mut updater = setup.updater(Some(setup.root_v1().await)).unwrap();
    updater.use_index(true);
    updater.refresh().await.unwrap();
    assert!(updater.find_target("1.13.9").await.unwrap().is_some());
    assert!(setup.home.path().join("index/targets.index").is_file());

    let before = setup.request_count();
    let mut warm = setup.updater(None).unwrap();
    warm.use_index(true);
    warm.refresh().await.unwrap();
    let (_, target) = warm.find_target("1.13.9").await.unwrap().unwrap();
    assert_eq!(target.hashes["sha256"], NGINX_1_13_9);
    assert!(warm.find_target("unsigned").await.unwrap().is_none());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(setup.request_count() - before, 2, "{}", setup.server.logs());

    let (status, body) = setup.client.upload(GUN, &[("targets", setup.repo.targets_bytes(2, &[("1.13.9", OTHER_DIGEST, 1600)]))]).await;
    assert_eq!(status, 200, "{body}");
    let mut updater = setup.updater(None).unwrap();
    updater.use_index(true);
    updater.refresh().await.unwrap();
    let (_, target) = updater.find_target("1.13.9").await.unwrap().unwrap();
    assert_eq!(target.hashes["sha256"], OTHER_DIGEST);
}

#[tokio::test]
async fn index_not_used_for_a_changed_targets_file() {
    let setup = setup().await;
    let mut updater = setup.updater(Some(setup.root_v1().await)).unwrap();
    updater.use_index(true);
    updater.refresh().await.unwrap();

    // Rewrite the digest in the stored role file and in the index entry, leaving the index
    // header alone: the file no longer has the hash the index was built for.
    for file in ["targets.json", "index/targets.index"] {
        let path = setup.home.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(NGINX_1_13_9), "{file}");
        std::fs::write(&path, text.replace(NGINX_1_13_9, OTHER_DIGEST)).unwrap();
    }
    let mut updater = setup.updater(None).unwrap();
    updater.use_index(true);
    updater.refresh().await.unwrap();
    let (_, target) = updater.find_target("1.13.9").await.unwrap().unwrap();
    assert_eq!(target.hashes["sha256"], NGINX_1_13_9);
}

#[tokio::test]
async fn tampered_targets_rejected() {
    let setup = setup().await;
    setup
        .execute(&format!(
            "UPDATE tuf_files SET data = convert_to(replace(convert_from(data, 'UTF8'), '{NGINX_1_13_9}', '{OTHER_DIGEST}'), 'UTF8') WHERE role = 'targets'"
        ))
        .await;
    let mut updater = setup.updater(Some(setup.root_v1().await)).unwrap();
    let error = untrusted(updater.refresh().await);
    assert!(error.to_string().contains("mix-and-match") || error.to_string().contains("threshold"), "{error}");
}

#[tokio::test]
async fn rolled_back_timestamp_rejected() {
    let setup = setup().await;
    for version in 2..=3 {
        let (status, _) = setup.client.upload(GUN, &[("targets", setup.repo.targets_bytes(version, &[]))]).await;
        assert_eq!(status, 200);
    }
    let mut updater = setup.updater(Some(setup.root_v1().await)).unwrap();
    updater.refresh().await.unwrap();

    // The server now serves timestamp version 1 again.
    setup.execute("DELETE FROM tuf_files WHERE role = 'timestamp' AND version > 1").await;
    let mut updater = setup.updater(None).unwrap();
    let error = untrusted(updater.refresh().await);
    assert!(matches!(error, UpdateError::Verify(VerifyError::Rollback { .. })), "{error}");
}

#[tokio::test]
async fn expired_timestamp_rejected() {
    let setup = setup().await;
    let two_days_later = Utc::now() + chrono::Duration::days(2);
    let mut updater = setup.updater_at(Some(setup.root_v1().await), two_days_later).unwrap();
    let error = untrusted(updater.refresh().await);
    assert!(matches!(&error, UpdateError::Verify(VerifyError::Expired { role, .. }) if role == "timestamp"), "{error}");
}

#[tokio::test]
async fn root_skipping_version_rejected() {
    let setup = setup().await;
    // Version 3 of root stored where version 2 belongs.
    let skipped = hex::encode(setup.repo.root_bytes(3));
    setup
        .execute(&format!(
            "INSERT INTO tuf_files (gun, role, version, sha256, length, data, expires) \
             VALUES ('{GUN}', 'root', 2, repeat('0', 64), 1, decode('{skipped}', 'hex'), now() + interval '1 day')"
        ))
        .await;
    let mut updater = setup.updater(Some(setup.root_v1().await)).unwrap();
    let error = untrusted(updater.refresh().await);
    assert!(matches!(error, UpdateError::Verify(VerifyError::VersionMismatch { .. })), "{error}");
}

#[tokio::test]
async fn missing_trusted_root_is_clear() {
    let setup = setup().await;
    let error = setup.updater(None).err().expect("no trusted root");
    assert!(error.to_string().contains("trusted root"), "{error}");
    assert!(!error.is_untrusted());
}

#[tokio::test]
async fn unreachable_server_is_operational_error() {
    let home = tempfile::tempdir().unwrap();
    let remote = Remote::new("http://127.0.0.1:9", &Gun::parse(GUN).unwrap()).unwrap();
    let setup = setup().await;
    let mut updater = Updater::new(remote, MetadataDir::new(home.path()), Some(setup.root_v1().await), Utc::now()).unwrap();
    let error = updater.refresh().await.expect_err("nothing listens on port 9");
    assert!(!error.is_untrusted(), "{error:?}");
}

#[tokio::test]
async fn offline_client_catches_up_many_root_versions() {
    let mut setup = setup().await;
    let mut updater = setup.updater(Some(setup.root_v1().await)).unwrap();
    updater.refresh().await.unwrap();

    // Five rotations of the root key while the client is offline, each cross-signed.
    for version in 2..=6 {
        let old_key = std::mem::replace(&mut setup.repo.root_key, signet_tests::metadata::ed25519());
        let bytes = sign(&setup.repo.root(version), &[&old_key, &setup.repo.root_key]);
        let (status, body) = setup.client.upload(GUN, &[("root", bytes)]).await;
        assert_eq!(status, 200, "{body}");
    }
    let mut updater = setup.updater(None).unwrap();
    updater.refresh().await.unwrap();
    assert_eq!(updater.trusted().root().version, 6);
    assert!(updater.find_target("1.13.9").await.unwrap().is_some());
}
