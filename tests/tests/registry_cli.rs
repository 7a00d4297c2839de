//! Signing on push and verifying on pull with the `signet` command against a real
//! `docker-registry` and a real signet-server: signing by tag, catching a moved tag, pinning
//! Kubernetes and Compose files, and `pin --check`.

use std::path::{Path, PathBuf};

use signet_tests::cli::{ok, signet_with, Run, ROOT_PASSPHRASE, TARGETS_PASSPHRASE};
use signet_tests::registry::{write_docker_config, PushedManifest, RegistryConfig, RegistryProcess, OCI_INDEX};
use signet_tests::{fresh_database, ServerProcess};

const REPO: &str = "team/app";

struct Setup {
    server: ServerProcess,
    registry: RegistryProcess,
    publisher: tempfile::TempDir,
    consumer: tempfile::TempDir,
    files: tempfile::TempDir,
    /// Registry options every command gets: the empty Docker config keeps the machine's own
    /// `~/.docker/config.json` out of the tests.
    registry_args: Vec<String>,
}

impl Setup {
    async fn start(config: RegistryConfig) -> Setup {
        let db = fresh_database().await.unwrap();
        let server = ServerProcess::start(&db, &[]).unwrap();
        let registry = RegistryProcess::start(config.clone()).await.unwrap();
        let files = tempfile::tempdir().unwrap();
        let empty_config = files.path().join("empty-docker-config.json");
        std::fs::write(&empty_config, "{}").unwrap();
        let mut registry_args = vec!["--docker-config".to_owned(), empty_config.display().to_string()];
        if !config.tls {
            registry_args.extend(["--insecure-registry".to_owned(), registry.host()]);
        }
        let setup = Setup { server, registry, publisher: tempfile::tempdir().unwrap(), consumer: tempfile::tempdir().unwrap(), files, registry_args };
        setup.init(&setup.name(REPO));
        setup
    }

    /// `HOST:PORT/REPO`, the image name and GUN of a registry repository.
    fn name(&self, repo: &str) -> String {
        format!("{}/{repo}", self.registry.host())
    }

    /// Initializes `gun` on the publisher's home and makes its root the consumer's trust anchor.
    fn init(&self, gun: &str) {
        ok(self.run(self.publisher.path(), &["init", gun]));
        let export = ok(self.run(self.publisher.path(), &["trust", "export", gun]));
        let root_file = self.files.path().join(format!("root-{}.json", gun.replace(['/', ':'], "_")));
        std::fs::write(&root_file, export.stdout.as_bytes()).unwrap();
        ok(self.run(self.consumer.path(), &["trust", "import", gun, root_file.to_str().unwrap()]));
    }

    fn run(&self, home: &Path, args: &[&str]) -> Run {
        let mut all: Vec<&str> = self.registry_args.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        signet_with(&self.server.base_url, home, &all, &[("SIGNET_ROOT_PASSPHRASE", ROOT_PASSPHRASE), ("SIGNET_TARGETS_PASSPHRASE", TARGETS_PASSPHRASE)])
    }

    /// Runs `signet` without the default registry options.
    fn run_bare(&self, home: &Path, args: &[&str]) -> Run {
        signet_with(&self.server.base_url, home, args, &[("SIGNET_ROOT_PASSPHRASE", ROOT_PASSPHRASE), ("SIGNET_TARGETS_PASSPHRASE", TARGETS_PASSPHRASE)])
    }

    fn publish(&self, args: &[&str]) -> Run {
        self.run(self.publisher.path(), args)
    }

    fn consume(&self, args: &[&str]) -> Run {
        self.run(self.consumer.path(), args)
    }

    async fn push(&self, tag: &str, seed: &str) -> PushedManifest {
        self.registry.push_image(REPO, tag, seed).await.unwrap()
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.files.path().join(file);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|error| panic!("{error}: {}", run.stdout))
}

#[tokio::test]
async fn sign_by_tag_then_verify_by_tag() {
    let setup = Setup::start(RegistryConfig::default()).await;
    let image = setup.push("v1", "one").await;
    let reference = format!("{}:v1", setup.name(REPO));

    let sign = ok(setup.publish(&["sign", &reference]));
    assert!(sign.stderr.contains(&image.digest.to_string()), "{}", sign.stderr);
    assert!(sign.stderr.contains("warning: --insecure-registry"), "{}", sign.stderr);

    let lookup = ok(setup.consume(&["lookup", &reference, "--output", "json"]));
    let value = json(&lookup);
    assert_eq!(value["digest"], image.digest.to_string());
    assert_eq!(value["size"], image.size);

    let verify = ok(setup.consume(&["verify", &reference]));
    assert_eq!(verify.stdout.trim(), format!("{}@{}", setup.name(REPO), image.digest));
    assert!(verify.stderr.contains("warning: --insecure-registry"), "{}", verify.stderr);
}

#[tokio::test]
async fn verify_reports_a_moved_tag() {
    let setup = Setup::start(RegistryConfig::default()).await;
    let signed = setup.push("v1", "signed").await;
    let reference = format!("{}:v1", setup.name(REPO));
    ok(setup.publish(&["sign", &reference]));
    ok(setup.consume(&["verify", &reference]));

    let moved = setup.push("v1", "pushed later").await;
    assert_ne!(moved.digest, signed.digest);
    let verify = setup.consume(&["verify", &reference]);
    assert_eq!(verify.code, 3, "{}", verify.stderr);
    assert!(verify.stderr.contains("moved after signing"), "{}", verify.stderr);
    assert!(verify.stderr.contains(&signed.digest.to_string()), "{}", verify.stderr);
    assert!(verify.stderr.contains(&moved.digest.to_string()), "{}", verify.stderr);
    assert!(verify.stdout.is_empty(), "{}", verify.stdout);
}

#[tokio::test]
async fn sign_image_index_with_its_media_type() {
    let setup = Setup::start(RegistryConfig::default()).await;
    let amd64 = setup.push("amd64", "amd64").await;
    let arm64 = setup.push("arm64", "arm64").await;
    let index = setup.registry.push_index(REPO, "multi", &[amd64, arm64]).await.unwrap();
    let reference = format!("{}:multi", setup.name(REPO));

    ok(setup.publish(&["sign", &reference]));
    let verify = ok(setup.consume(&["verify", &reference, "--output", "json"]));
    let value = json(&verify);
    assert_eq!(value["digest"], index.digest.to_string());
    assert_eq!(value["media_type"], OCI_INDEX);

    let targets = reqwest::get(setup.server.tuf_url(&setup.name(REPO), "targets.json")).await.unwrap().text().await.unwrap();
    let targets: serde_json::Value = serde_json::from_str(&targets).unwrap();
    assert_eq!(targets["signed"]["targets"]["multi"]["custom"]["mediaType"], OCI_INDEX);
    assert_eq!(targets["signed"]["targets"]["multi"]["length"], index.size);
}

#[tokio::test]
async fn plain_http_needs_insecure_registry() {
    let setup = Setup::start(RegistryConfig::default()).await;
    setup.push("v1", "one").await;
    let reference = format!("{}:v1", setup.name(REPO));
    let run = setup.run_bare(setup.publisher.path(), &["--docker-config", setup.registry_args[1].as_str(), "sign", &reference]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("--insecure-registry {}", setup.registry.host())), "{}", run.stderr);
}

#[tokio::test]
async fn sign_from_tls_registry_with_docker_credentials() {
    let user = "publisher";
    let password = "registry-password-5b1c";
    let setup = Setup::start(RegistryConfig { htpasswd: Some((user.to_owned(), password.to_owned())), tls: true, ..Default::default() }).await;
    let image = setup.push("v1", "tls").await;
    let reference = format!("{}:v1", setup.name(REPO));
    let ca = setup.registry.ca_file().unwrap().display().to_string();

    let anonymous = setup.publish(&["--registry-ca", &ca, "sign", &reference]);
    assert_eq!(anonymous.code, 1, "{}", anonymous.stderr);
    assert!(anonymous.stderr.contains("not authorized"), "{}", anonymous.stderr);

    let config = write_docker_config(setup.files.path(), &setup.registry.host(), user, password).unwrap();
    let config = config.display().to_string();
    let untrusted_ca = setup.run_bare(setup.publisher.path(), &["--docker-config", &config, "sign", &reference]);
    assert_eq!(untrusted_ca.code, 1, "{}", untrusted_ca.stderr);
    assert!(untrusted_ca.stderr.contains("--registry-ca"), "{}", untrusted_ca.stderr);

    let sign = ok(setup.run_bare(setup.publisher.path(), &["--docker-config", &config, "--registry-ca", &ca, "sign", &reference]));
    assert!(!sign.stderr.contains(password), "{}", sign.stderr);
    let verify = ok(setup.run_bare(setup.consumer.path(), &["--docker-config", &config, "--registry-ca", &ca, "verify", &reference]));
    assert_eq!(verify.stdout.trim(), format!("{}@{}", setup.name(REPO), image.digest));
}

#[tokio::test]
async fn gun_map_names_the_trust_repository() {
    let setup = Setup::start(RegistryConfig::default()).await;
    let gun = "registry.example.com/team/app";
    setup.init(gun);
    let image = setup.push("v1", "mapped").await;
    let reference = format!("{}:v1", setup.name(REPO));
    let map = format!("{}=registry.example.com", setup.registry.host());

    ok(setup.publish(&["--gun-map", &map, "sign", &reference]));
    let lookup = ok(setup.consume(&["lookup", &format!("{gun}:v1")]));
    assert_eq!(lookup.stdout.trim(), format!("{gun}@{}", image.digest));
    // The registry's own GUN has no such tag: the mapping decided where it was signed.
    assert_eq!(setup.consume(&["lookup", &reference]).code, 3);

    let verify = ok(setup.consume(&["--gun-map", &map, "verify", &reference]));
    assert_eq!(verify.stdout.trim(), format!("{}@{}", setup.name(REPO), image.digest));
}

/// A Deployment with three images (one init container, one quoted, one with a comment) and
/// CRLF-free formatting that pinning must keep.
fn deployment(name: &str) -> String {
    format!(
        r#"# Web front end.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # the public site
spec:
  replicas: 2
  template:
    spec:
      initContainers:
        - name: migrate
          image: {name}:api
      containers:
        -   name: web
            image: "{name}:web"   # pinned by CI
            ports:
              - containerPort: 8080
        - name: sidecar
          image: '{name}:sidecar'
          imagePullPolicy: IfNotPresent
"#
    )
}

fn compose(name: &str) -> String {
    format!(
        "services:\n  web:\n    image: {name}:web\n    ports:\n      - \"8080:8080\"\n\n  # Background jobs.\n  worker:\n    image: \"{name}:api\" # same image as the API\n    command: [\"worker\"]\n"
    )
}

#[tokio::test]
async fn pin_rewrites_only_the_references() {
    let setup = Setup::start(RegistryConfig::default()).await;
    let name = setup.name(REPO);
    let mut digests = Vec::new();
    for tag in ["web", "api", "sidecar"] {
        let image = setup.push(tag, tag).await;
        ok(setup.publish(&["sign", &format!("{name}:{tag}")]));
        digests.push((tag, image.digest.to_string()));
    }
    let deployment_file = setup.write("deployment.yaml", &deployment(&name));
    let compose_file = setup.write("compose.yaml", &compose(&name));
    let files = [deployment_file.to_str().unwrap(), compose_file.to_str().unwrap()];

    let check = setup.consume(&[&["pin", "--check"], &files[..]].concat());
    assert_eq!(check.code, 3, "{}", check.stderr);
    assert!(check.stderr.contains("not pinned"), "{}", check.stderr);
    assert_eq!(std::fs::read_to_string(&deployment_file).unwrap(), deployment(&name));

    let pin = ok(setup.consume(&[&["pin"], &files[..]].concat()));
    assert_eq!(pin.stdout.lines().count(), 5, "{}", pin.stdout);

    let pinned = |text: String| {
        digests.iter().fold(text, |text, (tag, digest)| {
            text.replace(&format!("{name}:{tag}\""), &format!("{name}:{tag}@{digest}\""))
                .replace(&format!("{name}:{tag}'"), &format!("{name}:{tag}@{digest}'"))
                .replace(&format!("{name}:{tag}\n"), &format!("{name}:{tag}@{digest}\n"))
                .replace(&format!("{name}:{tag} "), &format!("{name}:{tag}@{digest} "))
        })
    };
    let expected_deployment = pinned(deployment(&name));
    assert_eq!(expected_deployment.matches("@sha256:").count(), 3);
    assert_eq!(std::fs::read_to_string(&deployment_file).unwrap(), expected_deployment);
    let expected_compose = pinned(compose(&name));
    assert_eq!(expected_compose.matches("@sha256:").count(), 2);
    assert_eq!(std::fs::read_to_string(&compose_file).unwrap(), expected_compose);

    ok(setup.consume(&[&["pin", "--check"], &files[..]].concat()));
    // Pinning again changes nothing.
    ok(setup.consume(&[&["pin"], &files[..]].concat()));
    assert_eq!(std::fs::read_to_string(&deployment_file).unwrap(), expected_deployment);
}

#[tokio::test]
async fn pin_check_rejects_unsigned_digest() {
    let setup = Setup::start(RegistryConfig::default()).await;
    let name = setup.name(REPO);
    let signed = setup.push("web", "web").await;
    ok(setup.publish(&["sign", &format!("{name}:web")]));
    let other = setup.push("other", "other").await;

    let good = setup.write("Dockerfile", &format!("FROM {name}:web@{} AS build\nRUN true\nFROM scratch\n", signed.digest));
    ok(setup.consume(&["pin", "--check", good.to_str().unwrap()]));

    let wrong = setup.write("wrong.Dockerfile", &format!("FROM {name}:web@{}\n", other.digest));
    let check = setup.consume(&["pin", "--check", wrong.to_str().unwrap()]);
    assert_eq!(check.code, 3, "{}", check.stderr);
    assert!(check.stderr.contains(&signed.digest.to_string()), "{}", check.stderr);

    let digest_only = setup.write("digest.yaml", &format!("image: {name}@{}\n", other.digest));
    assert_eq!(setup.consume(&["pin", "--check", digest_only.to_str().unwrap()]).code, 3);
    let signed_digest_only = setup.write("signed-digest.yaml", &format!("image: {name}@{}\n", signed.digest));
    ok(setup.consume(&["pin", "--check", signed_digest_only.to_str().unwrap()]));
}

#[tokio::test]
async fn pin_refuses_unsigned_images_unless_allowed() {
    let setup = Setup::start(RegistryConfig::default()).await;
    let name = setup.name(REPO);
    let signed = setup.push("web", "web").await;
    ok(setup.publish(&["sign", &format!("{name}:web")]));
    let text = format!("image: {name}:web\n---\nimage: {name}:unsigned\n---\nimage: example.org/no/trust:1.0\n");
    let file = setup.write("mixed.yaml", &text);

    let rejected = setup.consume(&["pin", file.to_str().unwrap()]);
    assert_eq!(rejected.code, 3, "{}", rejected.stderr);
    assert!(rejected.stderr.contains("is not signed"), "{}", rejected.stderr);
    assert!(rejected.stderr.contains("no trusted root for example.org/no/trust"), "{}", rejected.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    let allowed = ok(setup.consume(&["pin", "--allow-unsigned", file.to_str().unwrap()]));
    assert!(allowed.stderr.contains("warning:"), "{}", allowed.stderr);
    let expected = text.replace(&format!("{name}:web\n"), &format!("{name}:web@{}\n", signed.digest));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);
}
