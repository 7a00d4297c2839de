//! Client authentication to the trust server, against a stand-in on 127.0.0.1 that requires a
//! bearer token and a token service on another port that issues it for HTTP Basic credentials.
//! The stand-in returns 404 for every metadata file once authorized, because only the
//! authentication steps are under test.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use signet_client::auth::{Credentials, ServerAuth};
use signet_client::remote::{Remote, RemoteError, RemoteOptions};
use signet_core::Gun;
use signet_tests::client_binary;
use zeroize::Zeroizing;

const GUN: &str = "example.com/team/app";
const TOKEN: &str = "tok-5f1d0c9e-client-auth";
const USERNAME: &str = "alice";
const PASSWORD: &str = "pw-8b2e41-correct";
const WRONG_PASSWORD: &str = "pw-wrong-77aa";
const SERVICE: &str = "signet-test";

/// Time allowed for one `signet` run.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// One request that reached a stand-in.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path_and_query: String,
    authorization: Option<String>,
}

#[derive(Clone)]
struct StandIn {
    realm: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A trust server stand-in and its token service, each on its own 127.0.0.1 port.
struct Servers {
    trust_url: String,
    token_url: String,
    trust_seen: Arc<Mutex<Vec<Seen>>>,
    token_seen: Arc<Mutex<Vec<Seen>>>,
    runtime: tokio::runtime::Runtime,
}

impl Servers {
    fn start() -> Servers {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let token_seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let trust_seen: Arc<Mutex<Vec<Seen>>> = Arc::default();

        let token_url = runtime.block_on(serve(StandIn { realm: String::new(), seen: token_seen.clone() }, token_service));
        let realm = format!("{token_url}/token");
        let trust_url = runtime.block_on(serve(StandIn { realm, seen: trust_seen.clone() }, trust_server));
        Servers { trust_url, token_url, trust_seen, token_seen, runtime }
    }

    fn token_requests(&self) -> Vec<Seen> {
        self.token_seen.lock().unwrap().clone()
    }

    fn trust_requests(&self) -> Vec<Seen> {
        self.trust_seen.lock().unwrap().clone()
    }
}

type Handler = fn(StandIn, Method, Uri, HeaderMap) -> Response;

/// Serves `handler` on 127.0.0.1 on a free port and returns its base URL.
async fn serve(state: StandIn, handler: Handler) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(move |State(state): State<StandIn>, method: Method, uri: Uri, headers: HeaderMap| async move {
            let authorization = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).map(str::to_owned);
            let path_and_query = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
            state.seen.lock().unwrap().push(Seen { method: method.to_string(), path_and_query, authorization });
            handler(state, method, uri, headers)
        })
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}")
}

/// Requires `Bearer TOKEN` for `/v2/<gun>/_trust/tuf/...`, then returns 404. `GET /v2/` returns
/// the challenge without a scope, which is the response `signet login` checks.
fn trust_server(state: StandIn, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let challenge = |scope: Option<String>| {
        let mut value = format!("Bearer realm=\"{}\",service=\"{SERVICE}\"", state.realm);
        if let Some(scope) = scope {
            value.push_str(&format!(",scope=\"{scope}\""));
        }
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, value)], body).into_response()
    };
    if path == "/v2/" {
        return challenge(None);
    }
    let Some(gun) = path.strip_prefix("/v2/").and_then(|rest| rest.split_once("/_trust/tuf/")).map(|(gun, _)| gun) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let expected = format!("Bearer {TOKEN}");
    let authorized = headers.get(header::AUTHORIZATION).is_some_and(|value| value.as_bytes() == expected.as_bytes());
    if !authorized {
        let actions = if method == Method::GET { "pull" } else { "pull,push" };
        return challenge(Some(format!("repository:{gun}:{actions}")));
    }
    let body = r#"{"errors":[{"code":"METADATA_NOT_FOUND","message":"not found"}]}"#;
    (StatusCode::NOT_FOUND, Body::from(body)).into_response()
}

/// Issues TOKEN at `/token` for Basic USERNAME:PASSWORD.
fn token_service(_state: StandIn, _method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if uri.path() != "/token" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{PASSWORD}")));
    let authorized = headers.get(header::AUTHORIZATION).is_some_and(|value| value.as_bytes() == expected.as_bytes());
    if !authorized {
        return (StatusCode::UNAUTHORIZED, r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#).into_response();
    }
    ([(header::CONTENT_TYPE, "application/json")], format!("{{\"token\":\"{TOKEN}\"}}")).into_response()
}

/// Exit code and output of one `signet` run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn output(&self) -> String {
        format!("exit {}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr)
    }

    /// Asserts that no secret of this test appears in stdout or stderr.
    fn assert_no_secrets(&self) {
        let output = format!("{}{}", self.stdout, self.stderr);
        for secret in [TOKEN, PASSWORD, WRONG_PASSWORD] {
            assert!(!output.contains(secret), "a secret appears in the output:\n{}", self.output());
        }
    }
}

/// Runs `signet --server SERVER --home HOME ARGS` with `env`, writing `stdin` to its standard
/// input, and kills it after [`RUN_TIMEOUT`].
fn signet(server: &str, home: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Run {
    let mut command = Command::new(client_binary());
    command.arg("--server").arg(server).arg("--home").arg(home).args(args);
    for name in ["SIGNET_TOKEN", "SIGNET_SERVER", "SIGNET_TLS_CA", "SIGNET_HOME"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied()).env("NO_COLOR", "1");
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("start signet");
    let mut input = child.stdin.take().expect("signet stdin");
    input.write_all(stdin.as_bytes()).expect("write signet stdin");
    drop(input);

    // Kill the child by its own PID if it runs too long, so a hanging run fails the test.
    let pid = child.id();
    let (done_sender, done_receiver) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_receiver.recv_timeout(RUN_TIMEOUT).is_err() {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        }
    });
    let output = child.wait_with_output().expect("wait for signet");
    let _ = done_sender.send(());
    let _ = watchdog.join();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn login(servers: &Servers, home: &Path, password: &str) -> Run {
    let server = servers.trust_url.as_str();
    signet(server, home, &["login", server, "--username", USERNAME, "--password-stdin"], &[], &format!("{password}\n"))
}

/// Deletes the repository on the stand-in. The stand-in's 404 counts as deleted, so exit 0 means
/// that the authorized request went through.
fn delete_remote(servers: &Servers, home: &Path, env: &[(&str, &str)]) -> Run {
    signet(&servers.trust_url, home, &["delete", GUN, "--remote"], env, "")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn remote_with_token_fetches() {
    let servers = Servers::start();
    let gun = Gun::parse(GUN).unwrap();
    let auth = ServerAuth { token: Some(Zeroizing::new(TOKEN.to_owned())), credentials: None };
    let remote = Remote::with_options(&servers.trust_url, &gun, &RemoteOptions::new(auth, Vec::new())).unwrap();
    let fetched = servers.runtime.block_on(remote.fetch("1.root.json", 1024));
    assert!(matches!(fetched, Ok(None)), "{fetched:?}");
}

#[test]
fn remote_without_token_unauthorized() {
    let servers = Servers::start();
    let gun = Gun::parse(GUN).unwrap();
    let remote = Remote::with_options(&servers.trust_url, &gun, &RemoteOptions::default()).unwrap();
    let error = servers.runtime.block_on(remote.fetch("1.root.json", 1024)).unwrap_err();
    assert!(matches!(error, RemoteError::Unauthorized { .. }), "{error:?}");
    assert!(error.to_string().contains(&format!("repository:{GUN}:pull")), "{error}");
    assert!(servers.token_requests().is_empty(), "{:?}", servers.token_requests());
}

#[test]
fn remote_credentials_fetch_token() {
    let servers = Servers::start();
    let gun = Gun::parse(GUN).unwrap();
    let credentials = Credentials { username: USERNAME.to_owned(), password: Zeroizing::new(PASSWORD.to_owned()) };
    let auth = ServerAuth { token: None, credentials: Some(credentials) };
    let remote = Remote::with_options(&servers.trust_url, &gun, &RemoteOptions::new(auth, Vec::new())).unwrap();
    let fetched = servers.runtime.block_on(remote.fetch("1.root.json", 1024));
    assert!(matches!(fetched, Ok(None)), "{fetched:?}");

    let token_requests = servers.token_requests();
    assert_eq!(token_requests.len(), 1, "{token_requests:?}");
    let scope = format!("scope=repository%3A{}%3Apull", GUN.replace('/', "%2F"));
    assert!(token_requests[0].path_and_query.contains(&scope), "{token_requests:?}");
    assert!(token_requests[0].path_and_query.contains(&format!("service={SERVICE}")), "{token_requests:?}");
}

#[test]
fn cli_token_flag_succeeds() {
    let servers = Servers::start();
    let home = tempfile::tempdir().unwrap();
    let run = delete_remote(&servers, home.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.output());

    let server = servers.trust_url.as_str();
    let run = signet(server, home.path(), &["--token", TOKEN, "delete", GUN, "--remote"], &[], "");
    assert_eq!(run.code, 0, "{}", run.output());
    assert!(run.stderr.contains(&format!("deleted {GUN} on {server}")), "{}", run.output());
    run.assert_no_secrets();

    let deletes: Vec<Seen> = servers.trust_requests().into_iter().filter(|seen| seen.method == "DELETE").collect();
    assert_eq!(deletes.last().and_then(|seen| seen.authorization.clone()), Some(format!("Bearer {TOKEN}")));
}

#[test]
fn cli_token_env_succeeds() {
    let servers = Servers::start();
    let home = tempfile::tempdir().unwrap();
    let run = delete_remote(&servers, home.path(), &[("SIGNET_TOKEN", TOKEN)]);
    assert_eq!(run.code, 0, "{}", run.output());
    run.assert_no_secrets();
}

#[test]
fn cli_without_token_names_login() {
    let servers = Servers::start();
    let home = tempfile::tempdir().unwrap();
    let run = signet(&servers.trust_url, home.path(), &["trust", "export", GUN], &[], "");
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(run.stderr.contains(&format!("not authorized for {GUN} (repository:{GUN}:pull)")), "{}", run.output());
    assert!(run.stderr.contains(&format!("signet login {}", servers.trust_url)), "{}", run.output());
    assert!(run.stderr.contains("--token or SIGNET_TOKEN"), "{}", run.output());
    assert!(servers.token_requests().is_empty(), "{:?}", servers.token_requests());
}

#[test]
fn cli_authorized_reaches_metadata() {
    let servers = Servers::start();
    let home = tempfile::tempdir().unwrap();
    let run = signet(&servers.trust_url, home.path(), &["--token", TOKEN, "trust", "export", GUN], &[], "");
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(run.stderr.contains(&format!("the server has no root for {GUN}")), "{}", run.output());
    run.assert_no_secrets();
}

#[test]
fn cli_rejected_token_hidden() {
    let servers = Servers::start();
    let home = tempfile::tempdir().unwrap();
    let stale = "tok-stale-0a1b2c";
    let run = signet(&servers.trust_url, home.path(), &["--token", stale, "trust", "export", GUN], &[], "");
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(run.stderr.contains("rejected the token"), "{}", run.output());
    assert!(!run.stderr.contains(stale), "{}", run.output());
}

#[test]
fn token_file_used_and_checked() {
    let servers = Servers::start();
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("token");
    std::fs::write(&token_file, format!("  {TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = delete_remote(&servers, home.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.output());

    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = delete_remote(&servers, home.path(), &[]);
    assert_eq!(run.code, 2, "{}", run.output());
    assert!(run.stderr.contains("chmod 600"), "{}", run.output());
    run.assert_no_secrets();
}

#[test]
fn login_then_challenge_flow() {
    let servers = Servers::start();
    let home = tempfile::tempdir().unwrap();
    let run = login(&servers, home.path(), PASSWORD);
    assert_eq!(run.code, 0, "{}", run.output());
    run.assert_no_secrets();

    let credentials_file = home.path().join("credentials.json");
    assert_eq!(mode(&credentials_file), 0o600);
    let stored = std::fs::read_to_string(&credentials_file).unwrap();
    assert!(stored.contains(USERNAME), "{stored}");

    let run = delete_remote(&servers, home.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.output());
    run.assert_no_secrets();

    // Login checked the credentials once without a scope, and the delete fetched a push token.
    let token_requests = servers.token_requests();
    assert_eq!(token_requests.len(), 2, "{token_requests:?}");
    assert!(token_requests[1].path_and_query.contains("pull%2Cpush"), "{token_requests:?}");
}

#[test]
fn login_wrong_password_stores_nothing() {
    let servers = Servers::start();
    let home = tempfile::tempdir().unwrap();
    let run = login(&servers, home.path(), WRONG_PASSWORD);
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(run.stderr.contains(&format!("rejected the credentials of user \"{USERNAME}\"")), "{}", run.output());
    assert!(run.stderr.contains("nothing was stored"), "{}", run.output());
    run.assert_no_secrets();
    assert!(!home.path().join("credentials.json").exists());
}

#[test]
fn logout_removes_credentials() {
    let servers = Servers::start();
    let home = tempfile::tempdir().unwrap();
    assert_eq!(login(&servers, home.path(), PASSWORD).code, 0);

    let server = servers.trust_url.as_str();
    let run = signet(server, home.path(), &["logout", server], &[], "");
    assert_eq!(run.code, 0, "{}", run.output());
    let stored = std::fs::read_to_string(home.path().join("credentials.json")).unwrap();
    assert!(!stored.contains(USERNAME), "{stored}");

    let run = delete_remote(&servers, home.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.output());
    assert!(run.stderr.contains("signet login"), "{}", run.output());
}

#[test]
fn token_not_sent_to_realm() {
    let servers = Servers::start();
    let home = tempfile::tempdir().unwrap();
    assert_eq!(login(&servers, home.path(), PASSWORD).code, 0);

    // A stale token makes the server return a challenge, and the stored credentials get a new
    // token from the realm on the other port.
    let stale = "tok-stale-3c4d5e";
    let run = signet(&servers.trust_url, home.path(), &["--token", stale, "delete", GUN, "--remote"], &[], "");
    assert_eq!(run.code, 0, "{}", run.output());

    let token_requests = servers.token_requests();
    assert!(!token_requests.is_empty());
    for seen in &token_requests {
        let authorization = seen.authorization.as_deref().unwrap_or_default();
        assert!(authorization.starts_with("Basic "), "{seen:?}");
        assert!(!authorization.contains(stale), "{seen:?}");
        assert!(!seen.path_and_query.contains(stale), "{seen:?}");
    }
    assert_ne!(servers.token_url, servers.trust_url);
}

#[test]
fn tls_ca_invalid_file_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let ca_file = home.path().join("not-a-ca.pem");
    std::fs::write(&ca_file, "not PEM").unwrap();
    let ca = ca_file.to_str().unwrap();
    // No request is sent: the CA file is read before the first request.
    let run = signet("http://127.0.0.1:9", home.path(), &["--tls-ca", ca, "trust", "export", GUN], &[], "");
    assert_eq!(run.code, 2, "{}", run.output());
    assert!(run.stderr.contains(ca), "{}", run.output());
}
