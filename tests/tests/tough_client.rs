//! tough, the TUF client of awslabs, loads every repository the `signet` command publishes.

use signet_tests::cli::{ok, signet};
use signet_tests::{fresh_database, ServerProcess};

#[tokio::test]
async fn tough_loads_signet_repository() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &[]).unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = &server.base_url;
    let digest = "4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de";

    ok(signet(url, home.path(), &["init", "nginx"]));
    ok(signet(url, home.path(), &["sign", "nginx:1.13.9", "--digest", &format!("sha256:{digest}"), "--size", "1570", "--media-type", "application/vnd.docker.distribution.manifest.v2+json"]));
    let root = ok(signet(url, home.path(), &["trust", "export", "nginx"])).stdout;

    let metadata = url::Url::parse(&format!("{url}/v2/docker.io/library/nginx/_trust/tuf/")).unwrap();
    let targets = url::Url::parse(&format!("{url}/targets/")).unwrap();
    let repository = tough::RepositoryLoader::new(&root.as_bytes(), metadata, targets).load().await.expect("tough loads the repository");

    let name = tough::TargetName::new("1.13.9").unwrap();
    let target = repository.targets().signed.find_target(&name, false).expect("target found");
    assert_eq!(hex::encode(&*target.hashes.sha256), digest);
    assert_eq!(target.length, 1570);
    assert_eq!(target.custom["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
}
