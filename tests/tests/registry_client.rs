//! The client's registry access against a real `docker-registry` on 127.0.0.1: resolving tags
//! to manifests, plain HTTP and TLS rules, and htpasswd and bearer token authentication with
//! credentials from Docker config files.

use std::error::Error as _;
use std::path::PathBuf;

use signet_client::registry::{Registry, RegistryError, RegistryOptions};
use signet_core::Gun;
use signet_tests::registry::{write_docker_config, RegistryConfig, RegistryProcess, OCI_INDEX, OCI_MANIFEST, TOKEN_SERVICE};

const USER: &str = "signet-user";
const PASSWORD: &str = "correct-horse-7f3a";

/// Options that reach `registry` over plain HTTP and read an empty Docker config file, so the
/// user's own `~/.docker/config.json` never plays a part.
fn plain_options(registry: &RegistryProcess, dir: &tempfile::TempDir) -> RegistryOptions {
    RegistryOptions { insecure: vec![registry.host()], ca_files: Vec::new(), docker_config: Some(empty_docker_config(dir)) }
}

fn empty_docker_config(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("empty-config.json");
    std::fs::write(&path, "{}").unwrap();
    path
}

fn name(registry: &RegistryProcess, repo: &str) -> Gun {
    Gun::parse(&format!("{}/{repo}", registry.host())).unwrap()
}

/// Joins the error's message and the messages of its sources with ": ".
fn chain(error: &RegistryError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

async fn htpasswd_registry() -> RegistryProcess {
    let config = RegistryConfig { htpasswd: Some((USER.to_owned(), PASSWORD.to_owned())), ..RegistryConfig::default() };
    RegistryProcess::start(config).await.unwrap()
}

#[tokio::test]
async fn resolves_pushed_image_by_tag() {
    let registry = RegistryProcess::start(RegistryConfig::default()).await.unwrap();
    let pushed = registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = Registry::new(plain_options(&registry, &dir)).unwrap();

    let info = client.resolve(&name(&registry, "team/app"), "v1").await.unwrap();

    assert_eq!(info.digest, pushed.digest);
    assert_eq!(info.size, pushed.size);
    assert_eq!(info.media_type, OCI_MANIFEST);
}

#[tokio::test]
async fn resolves_image_index() {
    let registry = RegistryProcess::start(RegistryConfig::default()).await.unwrap();
    let amd64 = registry.push_image("team/multi", "amd64", "amd64").await.unwrap();
    let arm64 = registry.push_image("team/multi", "arm64", "arm64").await.unwrap();
    let index = registry.push_index("team/multi", "latest", &[amd64, arm64]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = Registry::new(plain_options(&registry, &dir)).unwrap();

    let info = client.resolve(&name(&registry, "team/multi"), "latest").await.unwrap();

    assert_eq!(info.digest, index.digest);
    assert_eq!(info.size, index.size);
    assert_eq!(info.media_type, OCI_INDEX);
}

#[tokio::test]
async fn resolve_follows_retagged_manifest() {
    let registry = RegistryProcess::start(RegistryConfig::default()).await.unwrap();
    let first = registry.push_image("team/app", "stable", "first").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = Registry::new(plain_options(&registry, &dir)).unwrap();
    let gun = name(&registry, "team/app");
    assert_eq!(client.resolve(&gun, "stable").await.unwrap().digest, first.digest);

    let second = registry.push_image("team/app", "stable", "second").await.unwrap();
    assert_ne!(second.digest, first.digest);
    let info = client.resolve(&gun, "stable").await.unwrap();

    assert_eq!(info.digest, second.digest);
    assert_eq!(info.size, second.size);
}

#[tokio::test]
async fn unknown_tag_is_not_found() {
    let registry = RegistryProcess::start(RegistryConfig::default()).await.unwrap();
    registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = Registry::new(plain_options(&registry, &dir)).unwrap();
    let gun = name(&registry, "team/app");

    let error = client.resolve(&gun, "v2").await.unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{}", chain(&error));
    assert!(error.to_string().contains(&format!("{gun}:v2")), "{error}");

    let missing_repo = client.resolve(&name(&registry, "team/missing"), "v1").await.unwrap_err();
    assert!(matches!(missing_repo, RegistryError::NotFound { .. }), "{}", chain(&missing_repo));
}

#[tokio::test]
async fn plain_http_refused_unless_insecure() {
    let registry = RegistryProcess::start(RegistryConfig::default()).await.unwrap();
    let pushed = registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gun = name(&registry, "team/app");

    let options = RegistryOptions { insecure: Vec::new(), ..plain_options(&registry, &dir) };
    let error = Registry::new(options).unwrap().resolve(&gun, "v1").await.unwrap_err();
    assert!(matches!(error, RegistryError::PlainHttpRefused { .. }), "{}", chain(&error));
    assert!(error.to_string().contains(&registry.host()), "{error}");

    // The insecure list compares HOST:PORT without regard to case, and another port does not match.
    let other_port = RegistryOptions { insecure: vec!["127.0.0.1:1".to_owned()], ..plain_options(&registry, &dir) };
    let error = Registry::new(other_port).unwrap().resolve(&gun, "v1").await.unwrap_err();
    assert!(matches!(error, RegistryError::PlainHttpRefused { .. }), "{}", chain(&error));
    let listed = RegistryOptions { insecure: vec![registry.host().to_uppercase()], ..plain_options(&registry, &dir) };
    assert_eq!(Registry::new(listed).unwrap().resolve(&gun, "v1").await.unwrap().digest, pushed.digest);
}

#[tokio::test]
async fn htpasswd_without_credentials_unauthorized() {
    let registry = htpasswd_registry().await;
    registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = Registry::new(plain_options(&registry, &dir)).unwrap();

    let error = client.resolve(&name(&registry, "team/app"), "v1").await.unwrap_err();
    assert!(matches!(error, RegistryError::Unauthorized { .. }), "{}", chain(&error));
    assert!(error.to_string().contains("docker login"), "{error}");
}

#[tokio::test]
async fn htpasswd_credentials_from_docker_config() {
    let registry = htpasswd_registry().await;
    let pushed = registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_docker_config(dir.path(), &format!("http://{}", registry.host()), USER, PASSWORD).unwrap();
    let options = RegistryOptions { docker_config: Some(config), ..plain_options(&registry, &dir) };

    let info = Registry::new(options).unwrap().resolve(&name(&registry, "team/app"), "v1").await.unwrap();

    assert_eq!(info.digest, pushed.digest);
    assert_eq!(info.media_type, OCI_MANIFEST);
}

#[tokio::test]
async fn htpasswd_wrong_password_unauthorized() {
    let registry = htpasswd_registry().await;
    registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong_password = "wrong-battery-93kd";
    let config = write_docker_config(dir.path(), &registry.host(), USER, wrong_password).unwrap();
    let options = RegistryOptions { docker_config: Some(config), ..plain_options(&registry, &dir) };
    let client = Registry::new(options).unwrap();

    let error = client.resolve(&name(&registry, "team/app"), "v1").await.unwrap_err();
    assert!(matches!(error, RegistryError::Unauthorized { .. }), "{}", chain(&error));
    assert!(error.to_string().contains("rejected the credentials"), "{error}");
    for text in [chain(&error), format!("{error:?}"), format!("{client:?}")] {
        assert!(!text.contains(wrong_password), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

#[tokio::test]
async fn credential_helper_config_named_in_error() {
    let registry = htpasswd_registry().await;
    registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"auths": {}, "credsStore": "desktop"}"#).unwrap();
    let options = RegistryOptions { docker_config: Some(config), ..plain_options(&registry, &dir) };

    let error = Registry::new(options).unwrap().resolve(&name(&registry, "team/app"), "v1").await.unwrap_err();
    assert!(matches!(error, RegistryError::Unauthorized { .. }), "{}", chain(&error));
    assert!(error.to_string().contains("credsStore"), "{error}");
}

#[tokio::test]
async fn tls_registry_with_test_ca() {
    let registry = RegistryProcess::start(RegistryConfig { tls: true, ..RegistryConfig::default() }).await.unwrap();
    let pushed = registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = registry.ca_file().unwrap().to_owned();
    let options = RegistryOptions { insecure: Vec::new(), ca_files: vec![ca_file], docker_config: Some(empty_docker_config(&dir)) };

    let info = Registry::new(options).unwrap().resolve(&name(&registry, "team/app"), "v1").await.unwrap();

    assert_eq!(info.digest, pushed.digest);
    assert_eq!(info.size, pushed.size);
}

#[tokio::test]
async fn tls_registry_without_ca_untrusted() {
    let registry = RegistryProcess::start(RegistryConfig { tls: true, ..RegistryConfig::default() }).await.unwrap();
    registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = RegistryOptions { insecure: Vec::new(), ca_files: Vec::new(), docker_config: Some(empty_docker_config(&dir)) };

    let error = Registry::new(options).unwrap().resolve(&name(&registry, "team/app"), "v1").await.unwrap_err();
    assert!(matches!(error, RegistryError::UntrustedCertificate { .. }), "{}", chain(&error));
    assert!(error.to_string().contains("certificate"), "{error}");
}

#[tokio::test]
async fn tls_with_htpasswd_and_bad_ca_file() {
    let config = RegistryConfig { htpasswd: Some((USER.to_owned(), PASSWORD.to_owned())), tls: true, token_auth: false };
    let registry = RegistryProcess::start(config).await.unwrap();
    let pushed = registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let docker_config = write_docker_config(dir.path(), &format!("https://{}", registry.host()), USER, PASSWORD).unwrap();
    let ca_files = vec![registry.ca_file().unwrap().to_owned()];
    let options = RegistryOptions { insecure: Vec::new(), ca_files, docker_config: Some(docker_config.clone()) };
    let info = Registry::new(options).unwrap().resolve(&name(&registry, "team/app"), "v1").await.unwrap();
    assert_eq!(info.digest, pushed.digest);

    let not_a_certificate = dir.path().join("not-a-ca.pem");
    std::fs::write(&not_a_certificate, "this is not PEM").unwrap();
    let options = RegistryOptions { insecure: Vec::new(), ca_files: vec![not_a_certificate.clone()], docker_config: Some(docker_config) };
    let error = Registry::new(options).unwrap_err();
    assert!(matches!(error, RegistryError::InvalidCaFile { .. }), "{}", chain(&error));
    assert!(error.to_string().contains(&not_a_certificate.display().to_string()), "{error}");
}

async fn token_registry() -> RegistryProcess {
    let config = RegistryConfig { htpasswd: Some((USER.to_owned(), PASSWORD.to_owned())), tls: false, token_auth: true };
    RegistryProcess::start(config).await.unwrap()
}

/// Options for a token-authentication registry: the registry and its token service, both on
/// plain HTTP, are listed as insecure.
fn token_options(registry: &RegistryProcess, docker_config: PathBuf) -> RegistryOptions {
    RegistryOptions {
        insecure: vec![registry.host(), registry.token_host().unwrap()],
        ca_files: Vec::new(),
        docker_config: Some(docker_config),
    }
}

#[tokio::test]
async fn token_auth_resolves_with_credentials() {
    let registry = token_registry().await;
    let pushed = registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_docker_config(dir.path(), &registry.host(), USER, PASSWORD).unwrap();
    let client = Registry::new(token_options(&registry, config)).unwrap();

    let info = client.resolve(&name(&registry, "team/app"), "v1").await.unwrap();

    assert_eq!(info.digest, pushed.digest);
    assert_eq!(info.media_type, OCI_MANIFEST);
    let requests = registry.token_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].scope.as_deref(), Some("repository:team/app:pull"));
    assert_eq!(requests[0].service.as_deref(), Some(TOKEN_SERVICE));
    assert!(requests[0].had_authorization);
}

#[tokio::test]
async fn token_auth_rejections() {
    let registry = token_registry().await;
    registry.push_image("team/app", "v1", "one").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gun = name(&registry, "team/app");

    // The token service rejects a wrong password, and the error does not contain it.
    let wrong_password = "wrong-battery-93kd";
    let config = write_docker_config(dir.path(), &registry.host(), USER, wrong_password).unwrap();
    let error = Registry::new(token_options(&registry, config)).unwrap().resolve(&gun, "v1").await.unwrap_err();
    assert!(matches!(error, RegistryError::Unauthorized { .. }), "{}", chain(&error));
    assert!(!chain(&error).contains(wrong_password), "{}", chain(&error));

    // Without credentials the token service issues no pull token, so the registry rejects it.
    let error = Registry::new(token_options(&registry, empty_docker_config(&dir))).unwrap().resolve(&gun, "v1").await.unwrap_err();
    assert!(matches!(error, RegistryError::Unauthorized { .. }), "{}", chain(&error));
    assert!(error.to_string().contains("docker login"), "{error}");

    // A realm on plain HTTP is used only when its host is listed as insecure.
    let config = write_docker_config(dir.path(), &registry.host(), USER, PASSWORD).unwrap();
    let options = RegistryOptions { insecure: vec![registry.host()], ..token_options(&registry, config) };
    let error = Registry::new(options).unwrap().resolve(&gun, "v1").await.unwrap_err();
    assert!(matches!(error, RegistryError::PlainHttpRefused { .. }), "{}", chain(&error));
    assert!(error.to_string().contains(&registry.token_host().unwrap()), "{error}");
}
