//! TLS, authentication and authorization of signet-server, with real tokens, certificates made
//! by openssl, and the `signet` command.

use std::process::Command;
use std::sync::Arc;

use signet_server::auth::token::{Access, Audience, Claims, TokenSigner};
use signet_tests::metadata::{Client, Repo};
use signet_tests::cli::{ok, signet, signet_input};
use signet_tests::registry::write_tls_files;
use signet_tests::tokens::{Mint, TokenService};
use signet_tests::{fresh_database, server_binary, ServerProcess, TEST_KEK};

const TEAM_A_APP: &str = "registry.example/team-a/app";
const TEAM_B_APP: &str = "registry.example/team-b/app";

/// Builds an HTTPS client that trusts only `ca`.
fn https_client(ca: &std::path::Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn serves_https_and_reloads_certificate_on_sighup() {
    let db = fresh_database().await.unwrap();
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let old = write_tls_files(first.path()).unwrap();
    let new = write_tls_files(second.path()).unwrap();
    let cert = first.path().join("serving.pem");
    let key = first.path().join("serving.key");
    std::fs::copy(&old.certificate, &cert).unwrap();
    std::fs::copy(&old.key, &key).unwrap();

    let server = ServerProcess::start(&db, &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]).unwrap();
    assert!(server.base_url.starts_with("https://"), "{}", server.base_url);
    let response = https_client(&old.ca).get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(https_client(&new.ca).get(server.url("/healthz")).send().await.is_err());
    // Plain HTTP on the TLS port gets no HTTP response.
    let plain = server.base_url.replace("https://", "http://");
    assert!(reqwest::get(format!("{plain}/healthz")).await.is_err());

    std::fs::copy(&new.certificate, &cert).unwrap();
    std::fs::copy(&new.key, &key).unwrap();
    let pid = server.pid().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let mut reloaded = false;
    for _ in 0..50 {
        if server.logs().contains("reloaded the TLS certificate") {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(reloaded, "{}", server.logs());
    // A fresh client per check, so no connection made before the reload is reused.
    assert_eq!(https_client(&new.ca).get(server.url("/healthz")).send().await.unwrap().status(), 200);
    assert!(https_client(&old.ca).get(server.url("/healthz")).send().await.is_err());

    // A broken file on reload keeps the current certificate.
    std::fs::write(&cert, "not a certificate").unwrap();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(server.logs().contains("failed to reload the TLS certificate"), "{}", server.logs());
    assert_eq!(https_client(&new.ca).get(server.url("/healthz")).send().await.unwrap().status(), 200);
}

/// Runs the server binary with `args` and returns its exit status and stderr, for start-up
/// checks that refuse before the server listens.
fn start_refused(database_url: &str, args: &[&str]) -> (bool, String) {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(server_binary())
        .args(["--data-dir", data.path().to_str().unwrap(), "--database-url", database_url])
        .args(args)
        .env("SIGNET_KEY_ENCRYPTION_KEY", TEST_KEK)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn network_address_needs_tls_and_auth() {
    let db = fresh_database().await.unwrap();
    let tls_dir = tempfile::tempdir().unwrap();
    let tls = write_tls_files(tls_dir.path()).unwrap();
    let (cert, key) = (tls.certificate.to_str().unwrap(), tls.key.to_str().unwrap());

    // These are rejected before the server binds, so nothing listens beyond loopback.
    let (ok, stderr) = start_refused(&db, &["--listen", "0.0.0.0:0"]);
    assert!(!ok);
    assert!(stderr.contains("refusing to serve plain HTTP"), "{stderr}");
    assert!(stderr.contains("--insecure-plain-http"), "{stderr}");

    let (ok, stderr) = start_refused(&db, &["--listen", "0.0.0.0:0", "--tls-cert", cert, "--tls-key", key]);
    assert!(!ok);
    assert!(stderr.contains("refusing to accept anonymous requests"), "{stderr}");
    assert!(stderr.contains("--insecure-no-auth"), "{stderr}");

    let (ok, stderr) = start_refused(&db, &["--tls-cert", cert]);
    assert!(!ok);
    assert!(stderr.contains("--tls-cert and --tls-key go together"), "{stderr}");

    let server = ServerProcess::start(&db, &[]).unwrap();
    assert!(server.logs().contains("accepting anonymous requests, on a loopback address only"), "{}", server.logs());
}

#[test]
fn token_commands_need_the_servers_database() {
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(server_binary())
        .args(["token", "list", "--data-dir", empty.path().to_str().unwrap()])
        .env("SIGNET_KEY_ENCRYPTION_KEY", TEST_KEK)
        .env_remove("SIGNET_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("no embedded database"), "{stderr}");
    assert!(!empty.path().join("postgres").exists());
}

/// Runs `signet-server token ARGS` on the database and returns its stdout; fails the test unless
/// it succeeds.
fn token_command(database_url: &str, args: &[&str]) -> String {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(server_binary())
        .arg("token")
        .args(args)
        .args(["--data-dir", data.path().to_str().unwrap(), "--database-url", database_url])
        .env("SIGNET_KEY_ENCRYPTION_KEY", TEST_KEK)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "token {args:?}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

fn issue(database_url: &str, args: &[&str]) -> String {
    let mut all = vec!["issue"];
    all.extend_from_slice(args);
    let token = token_command(database_url, &all).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    token
}

/// Status and `WWW-Authenticate` header of a GET.
async fn get(client: &Client, gun: &str, file: &str) -> (u16, String) {
    let response = client.get(gun, file).await;
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (response.status().as_u16(), challenge)
}

#[tokio::test]
async fn builtin_tokens_grant_only_their_access() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &["--auth", "builtin", "--cache-ttl", "0s"]).unwrap();
    let url = &server.base_url;
    let alice_token = issue(&db, &["--gun", "registry.example/team-a/*", "--actions", "pull,push", "--subject", "alice"]);
    let bob_token = issue(&db, &["--gun", "registry.example/team-b/*", "--actions", "*", "--subject", "bob"]);
    let reader_token = issue(&db, &["--gun", "registry.example/team-b/*", "--actions", "pull", "--subject", "reader"]);
    let admin_token = issue(&db, &["--admin", "--subject", "operator"]);
    let tokens = [&alice_token, &bob_token, &reader_token, &admin_token];

    let bob = Client::with_token(url, &bob_token);
    let repo_b = Repo::init(&bob, TEAM_B_APP).await;
    let alice = Client::with_token(url, &alice_token);
    Repo::init(&alice, TEAM_A_APP).await;

    // Without a token: 401 with a challenge naming the scope.
    let anonymous = Client::new(url);
    let (status, challenge) = get(&anonymous, TEAM_B_APP, "root.json").await;
    assert_eq!(status, 401);
    assert_eq!(challenge, format!("Bearer realm=\"signet\",service=\"signet\",scope=\"repository:{TEAM_B_APP}:pull\""));

    // A team-a token cannot read, publish to, delete or rotate keys of team-b.
    assert_eq!(get(&alice, TEAM_B_APP, "root.json").await.0, 401);
    let (status, _) = alice.upload(TEAM_B_APP, &[("targets", repo_b.targets_bytes(2, &[]))]).await;
    assert_eq!(status, 401);
    assert_eq!(alice.http.delete(alice.tuf_url(TEAM_B_APP, "")).send().await.unwrap().status(), 401);
    assert_eq!(alice.http.post(alice.tuf_url(TEAM_B_APP, "timestamp.key")).send().await.unwrap().status(), 401);
    // Nor, with pull and push only, delete its own repository.
    let delete = alice.http.delete(alice.tuf_url(TEAM_A_APP, "")).send().await.unwrap();
    assert_eq!(delete.status(), 401);
    assert!(delete.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));

    // A pull-only token reads but cannot publish.
    let reader = Client::with_token(url, &reader_token);
    assert_eq!(get(&reader, TEAM_B_APP, "root.json").await.0, 200);
    let (status, body) = reader.upload(TEAM_B_APP, &[("targets", repo_b.targets_bytes(2, &[]))]).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = bob.upload(TEAM_B_APP, &[("targets", repo_b.targets_bytes(2, &[]))]).await;
    assert_eq!(status, 200, "{body}");

    // The global changefeed needs an admin token; it names who made each change.
    assert_eq!(alice.http.get(server.url("/v2/_trust/changefeed")).send().await.unwrap().status(), 401);
    let admin = Client::with_token(url, &admin_token);
    let feed: serde_json::Value = admin.http.get(server.url("/v2/_trust/changefeed")).send().await.unwrap().json().await.unwrap();
    let actors: Vec<&str> = feed["records"].as_array().unwrap().iter().filter_map(|record| record["actor"].as_str()).collect();
    assert_eq!(actors, ["bob", "alice", "bob"], "{feed}");
    assert_eq!(alice.http.get(server.url("/metrics")).send().await.unwrap().status(), 401);
    assert_eq!(admin.http.get(server.url("/metrics")).send().await.unwrap().status(), 200);

    // A revoked token stops working at once.
    let list = token_command(&db, &["list"]);
    let reader_id = list.lines().find(|line| line.contains("\treader\t")).unwrap().split('\t').next().unwrap().to_owned();
    token_command(&db, &["revoke", &reader_id]);
    let (status, challenge) = get(&reader, TEAM_B_APP, "root.json").await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");

    let logs = server.logs();
    assert!(logs.contains("subject=alice"), "{logs}");
    for token in tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a token appears in the log");
        assert!(!list.contains(signature), "a token appears in token list");
    }
}

#[tokio::test]
async fn anonymous_read_follows_the_flag() {
    let db = fresh_database().await.unwrap();
    let closed = ServerProcess::start(&db, &["--auth", "builtin"]).unwrap();
    let open = ServerProcess::start(&db, &["--auth", "builtin", "--anonymous-read"]).unwrap();
    let token = issue(&db, &["--gun", "registry.example/*", "--actions", "*"]);
    Repo::init(&Client::with_token(&open.base_url, &token), TEAM_A_APP).await;

    assert_eq!(get(&Client::new(&closed.base_url), TEAM_A_APP, "root.json").await.0, 401);
    let anonymous = Client::new(&open.base_url);
    assert_eq!(get(&anonymous, TEAM_A_APP, "root.json").await.0, 200);
    let repo = Repo::new(&Client::with_token(&open.base_url, &token), TEAM_A_APP).await;
    let (status, _) = anonymous.upload(TEAM_A_APP, &[("targets", repo.targets_bytes(2, &[]))]).await;
    assert_eq!(status, 401);
    // Fetching a key of a repository without a root creates one, so it needs push.
    assert_eq!(get(&anonymous, "registry.example/new/app", "timestamp.key").await.0, 401);
    // A bad token is rejected even where no token is needed.
    assert_eq!(get(&Client::with_token(&open.base_url, "not.a.token"), TEAM_A_APP, "root.json").await.0, 401);
}

/// Writes an Ed25519 public key as a PEM SubjectPublicKeyInfo file.
fn write_public_key(dir: &std::path::Path, signer: &TokenSigner) -> std::path::PathBuf {
    let mut der = hex::decode("302a300506032b6570032100").unwrap();
    der.extend_from_slice(&signer.public_key());
    let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", der));
    let path = dir.join("token-key.pem");
    std::fs::write(&path, pem).unwrap();
    path
}

fn claims(issuer: &str, audience: &str, expires_in: i64, gun: &str, actions: &[&str]) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: issuer.to_owned(),
        sub: "external-user".to_owned(),
        aud: Audience::single(audience),
        exp: now + expires_in,
        nbf: Some(now - 5),
        iat: Some(now - 5),
        jti: None,
        access: vec![Access { kind: "repository".to_owned(), name: gun.to_owned(), actions: actions.iter().map(|a| (*a).to_owned()).collect() }],
    }
}

#[tokio::test]
async fn external_tokens_checked() {
    let db = fresh_database().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (signer, _) = TokenSigner::generate().unwrap();
    let (other, _) = TokenSigner::generate().unwrap();
    let key_file = write_public_key(dir.path(), &signer);
    let server = ServerProcess::start(
        &db,
        &[
            "--auth", "registry-token", "--token-key", key_file.to_str().unwrap(), "--token-issuer", "test-issuer",
            "--token-service", "signet-test", "--token-realm", "https://auth.example/token",
        ],
    )
    .unwrap();
    let url = &server.base_url;
    let good = signer.sign(&claims("test-issuer", "signet-test", 300, TEAM_A_APP, &["pull", "push"])).unwrap();
    Repo::init(&Client::with_token(url, &good), TEAM_A_APP).await;
    assert_eq!(get(&Client::with_token(url, &good), TEAM_A_APP, "root.json").await.0, 200);

    let (status, challenge) = get(&Client::new(url), TEAM_A_APP, "root.json").await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with("Bearer realm=\"https://auth.example/token\",service=\"signet-test\""), "{challenge}");

    let rejected = [
        ("wrong key", other.sign(&claims("test-issuer", "signet-test", 300, TEAM_A_APP, &["pull"])).unwrap()),
        ("wrong issuer", signer.sign(&claims("other-issuer", "signet-test", 300, TEAM_A_APP, &["pull"])).unwrap()),
        ("wrong audience", signer.sign(&claims("test-issuer", "other-service", 300, TEAM_A_APP, &["pull"])).unwrap()),
        ("expired", signer.sign(&claims("test-issuer", "signet-test", -300, TEAM_A_APP, &["pull"])).unwrap()),
        ("other repository", signer.sign(&claims("test-issuer", "signet-test", 300, TEAM_B_APP, &["pull"])).unwrap()),
    ];
    for (case, token) in &rejected {
        let (status, _) = get(&Client::with_token(url, token), TEAM_A_APP, "root.json").await;
        assert_eq!(status, 401, "{case}");
    }
    let logs = server.logs();
    for (_, token) in rejected.iter().chain([&("good", good.clone())]) {
        assert!(!logs.contains(token.rsplit('.').next().unwrap()), "a token appears in the log");
    }
}

#[tokio::test]
async fn gun_prefixes_limit_repositories() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &["--gun-prefix", "registry.example/team-a"]).unwrap();
    let client = Client::new(&server.base_url);
    Repo::init(&client, TEAM_A_APP).await;
    let response = client.get(TEAM_B_APP, "root.json").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("GUN_NOT_ALLOWED"));
    let (status, body) = client.upload(TEAM_B_APP, &[("root", b"{}".to_vec())]).await;
    assert_eq!(status, 400, "{body}");
}

const NGINX_1_13_9: &str = "sha256:4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de";

// The token service runs on this runtime while the test blocks on `signet` processes, so it
// needs a second worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_works_over_tls_with_token_service() {
    let db = fresh_database().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tls = write_tls_files(dir.path()).unwrap();
    let (signer, _) = TokenSigner::generate().unwrap();
    let key_file = write_public_key(dir.path(), &signer);

    // Like a registry token service, this one issues a token to any user with valid credentials,
    // and grants what is asked for on team-a repositories only.
    let mint: Arc<Mint> = Arc::new(move |scope: &str| {
        let requested = scope.strip_prefix("repository:").and_then(|rest| rest.rsplit_once(':'));
        let mut claims = claims("test-issuer", "signet", 300, "", &[]);
        claims.access = match requested {
            Some((gun, actions)) if gun.starts_with("registry.example/team-a/") => {
                vec![Access { kind: "repository".to_owned(), name: gun.to_owned(), actions: actions.split(',').map(str::to_owned).collect() }]
            }
            _ => Vec::new(),
        };
        signer.sign(&claims).ok()
    });
    let password = "alice-password-91c2";
    let tokens = TokenService::start_https("alice", password, mint, &tls.certificate, &tls.key).await.unwrap();
    let realm = tokens.realm();
    let server = ServerProcess::start(
        &db,
        &[
            "--tls-cert", tls.certificate.to_str().unwrap(), "--tls-key", tls.key.to_str().unwrap(), "--auth", "registry-token",
            "--token-key", key_file.to_str().unwrap(), "--token-issuer", "test-issuer", "--token-realm", &realm,
        ],
    )
    .unwrap();
    let url = server.base_url.as_str();
    assert!(url.starts_with("https://"), "{url}");
    let ca = tls.ca.to_str().unwrap();
    let publisher = tempfile::tempdir().unwrap();
    let consumer = tempfile::tempdir().unwrap();
    let reference = format!("{TEAM_A_APP}:1.0");

    let untrusted = signet(url, publisher.path(), &["init", TEAM_A_APP]);
    assert_eq!(untrusted.code, 1, "{}", untrusted.stderr);
    let anonymous = signet(url, publisher.path(), &["--tls-ca", ca, "init", TEAM_A_APP]);
    assert_eq!(anonymous.code, 1, "{}", anonymous.stderr);
    assert!(anonymous.stderr.contains("signet login"), "{}", anonymous.stderr);

    let wrong = signet_input(url, publisher.path(), &["--tls-ca", ca, "login", url, "--username", "alice", "--password-stdin"], "wrong\n");
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("rejected the credentials"), "{}", wrong.stderr);
    ok(signet_input(url, publisher.path(), &["--tls-ca", ca, "login", url, "--username", "alice", "--password-stdin"], &format!("{password}\n")));
    ok(signet(url, publisher.path(), &["--tls-ca", ca, "init", TEAM_A_APP]));
    ok(signet(url, publisher.path(), &["--tls-ca", ca, "sign", &reference, "--digest", NGINX_1_13_9, "--size", "1570"]));
    let export = ok(signet(url, publisher.path(), &["--tls-ca", ca, "trust", "export", TEAM_A_APP]));
    let root_file = dir.path().join("root.json");
    std::fs::write(&root_file, export.stdout.as_bytes()).unwrap();

    ok(signet_input(url, consumer.path(), &["--tls-ca", ca, "login", url, "--username", "alice", "--password-stdin"], &format!("{password}\n")));
    ok(signet(url, consumer.path(), &["trust", "import", TEAM_A_APP, root_file.to_str().unwrap()]));
    let lookup = ok(signet(url, consumer.path(), &["--tls-ca", ca, "lookup", &reference]));
    assert_eq!(lookup.stdout.trim(), format!("{TEAM_A_APP}@{NGINX_1_13_9}"));

    // The token service refuses team-b, so publishing there fails with a clear error.
    let rejected = signet(url, publisher.path(), &["--tls-ca", ca, "init", TEAM_B_APP]);
    assert_eq!(rejected.code, 1, "{}", rejected.stderr);

    let scopes = tokens.scopes();
    assert!(scopes.contains(&format!("repository:{TEAM_A_APP}:pull,push")), "{scopes:?}");
    assert!(scopes.contains(&format!("repository:{TEAM_A_APP}:pull")), "{scopes:?}");
    let logs = server.logs();
    assert!(logs.contains("subject=external-user"), "{logs}");
    assert!(!logs.contains(password));
    for run in [&untrusted, &anonymous, &wrong, &lookup, &rejected] {
        assert!(!run.stderr.contains(password));
        assert!(!run.stdout.contains(password));
    }
}

#[tokio::test]
async fn client_uses_builtin_tokens() {
    let db = fresh_database().await.unwrap();
    let server = ServerProcess::start(&db, &["--auth", "builtin"]).unwrap();
    let url = server.base_url.as_str();
    let publisher_token = issue(&db, &["--gun", "registry.example/team-a/*", "--actions", "pull,push", "--subject", "publisher"]);
    let reader_token = issue(&db, &["--gun", "registry.example/team-a/*", "--actions", "pull"]);
    let publisher = tempfile::tempdir().unwrap();
    let consumer = tempfile::tempdir().unwrap();
    let reference = format!("{TEAM_A_APP}:1.0");

    let missing = signet(url, publisher.path(), &["init", TEAM_A_APP]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(missing.stderr.contains("--token"), "{}", missing.stderr);

    ok(signet(url, publisher.path(), &["--token", &publisher_token, "init", TEAM_A_APP]));
    // The token file in the home works like --token.
    let token_file = publisher.path().join("token");
    std::fs::write(&token_file, &publisher_token).unwrap();
    std::fs::set_permissions(&token_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    ok(signet(url, publisher.path(), &["sign", &reference, "--digest", NGINX_1_13_9, "--size", "1570"]));
    let export = ok(signet(url, publisher.path(), &["trust", "export", TEAM_A_APP]));
    let root_file = consumer.path().join("root.json");
    std::fs::write(&root_file, export.stdout.as_bytes()).unwrap();

    ok(signet(url, consumer.path(), &["trust", "import", TEAM_A_APP, root_file.to_str().unwrap()]));
    let lookup = ok(signet(url, consumer.path(), &["--token", &reader_token, "lookup", &reference]));
    assert_eq!(lookup.stdout.trim(), format!("{TEAM_A_APP}@{NGINX_1_13_9}"));
    // This server has no external token service, so there is nothing to log in to.
    let login = signet_input(url, consumer.path(), &["login", "--username", "alice", "--password-stdin"], "secret-3f9a\n");
    assert_eq!(login.code, 1, "{}", login.stderr);
    assert!(login.stderr.contains("names no token service"), "{}", login.stderr);
    assert!(!consumer.path().join("credentials.json").exists());

    let denied = signet(url, consumer.path(), &["--token", &reader_token, "delete", TEAM_A_APP, "--remote"]);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    for run in [&missing, &lookup, &denied] {
        assert!(!run.stderr.contains(&publisher_token));
        assert!(!run.stderr.contains(&reader_token));
    }
}
