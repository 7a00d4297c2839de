//! HTTP access to a signet-server (or any server with Notary's layout) for one repository,
//! with bearer token authentication.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use signet_core::Gun;
use zeroize::Zeroizing;

use crate::auth::{self, AuthError, ServerAuth};
use crate::registry::RegistryError;

/// Time allowed for connecting and for a whole request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Maximum number of redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// A failed request. Server refusals carry the server's error code and message.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("invalid server URL {0:?}; use http://HOST:PORT or https://HOST:PORT")]
    InvalidUrl(String),

    #[error("the server URL contains a user name or password; store credentials with `signet login` instead")]
    CredentialsInUrl,

    #[error("cannot reach the server at {url}")]
    Unreachable { url: String, #[source] source: reqwest::Error },

    #[error("the TLS certificate of the server at {url} is not trusted; pass the CA certificate that issued it with --tls-ca FILE (the server's own certificate must not be a CA certificate)")]
    UntrustedCertificate { url: String, #[source] source: reqwest::Error },

    #[error("{file} is larger than the limit of {limit} bytes (endless data attack or misconfigured server)")]
    TooLarge { file: String, limit: u64 },

    #[error("server returned {status} for {file}: {message}")]
    Status { file: String, status: u16, code: String, message: String, detail: Value },

    #[error("not authorized for {gun} ({scope}); pass a token with --token or SIGNET_TOKEN, or run signet login {server} if the server uses an external token service")]
    Unauthorized { gun: String, scope: String, server: String },

    #[error("the server rejected the token for {gun} ({scope}): it may have expired, been revoked or lack this access; pass a new token with --token or SIGNET_TOKEN, or run signet login {server} if the server uses an external token service")]
    TokenRejected { gun: String, scope: String, server: String },

    #[error("failed to get a token for {gun}")]
    Auth {
        gun: String,
        #[source]
        source: AuthError,
    },

    #[error("cannot load the CA certificates for the trust server")]
    CaFile(#[source] RegistryError),

    #[error("failed to set up the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl RemoteError {
    /// True when the server returned 409: another publisher committed first, or the uploaded
    /// version is not newer than the stored one.
    pub fn is_conflict(&self) -> bool {
        matches!(self, RemoteError::Status { status: 409, .. })
    }

    /// True when the server rejected the request for missing or insufficient authorization, or
    /// no token could be fetched.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, RemoteError::Unauthorized { .. } | RemoteError::TokenRejected { .. } | RemoteError::Auth { .. })
    }
}

/// Reads the PEM CA certificates in `path`, to trust for the trust server's HTTPS besides the
/// system roots.
pub fn read_ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, RemoteError> {
    crate::registry::read_ca_file(path).map_err(RemoteError::CaFile)
}

/// TLS and authentication settings for every [`Remote`] made from them. Clones share one
/// [`ServerAuth`], so a token fetched for one repository is used for the rest of the process.
#[derive(Clone, Default)]
pub struct RemoteOptions {
    ca_certificates: Vec<reqwest::Certificate>,
    auth: Arc<Mutex<ServerAuth>>,
}

impl RemoteOptions {
    /// Sends `auth.token` to the trust server and trusts `ca_certificates` besides the system
    /// roots.
    pub fn new(auth: ServerAuth, ca_certificates: Vec<reqwest::Certificate>) -> RemoteOptions {
        RemoteOptions { ca_certificates, auth: Arc::new(Mutex::new(auth)) }
    }

    /// Returns the extra trusted CA certificates.
    pub fn ca_certificates(&self) -> &[reqwest::Certificate] {
        &self.ca_certificates
    }

    /// Builds an HTTP client with the timeouts, redirect policy and CA certificates that a
    /// [`Remote`] uses, for requests outside one repository such as `signet login`.
    pub fn http_client(&self) -> Result<reqwest::Client, RemoteError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("signet/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect_policy());
        for certificate in &self.ca_certificates {
            builder = builder.add_root_certificate(certificate.clone());
        }
        builder.build().map_err(RemoteError::Client)
    }
}

impl fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("ca_certificates", &self.ca_certificates.len())
            .field("auth", &*lock(&self.auth))
            .finish()
    }
}

fn lock(auth: &Mutex<ServerAuth>) -> std::sync::MutexGuard<'_, ServerAuth> {
    // A panic while the lock was held cannot leave ServerAuth half-written: every write is
    // one assignment.
    auth.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Follows at most [`MAX_REDIRECTS`] redirects and none from HTTPS to plain HTTP, because
/// reqwest keeps the `Authorization` header on a redirect to the same host and port.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let downgrade = attempt.url().scheme() == "http" && attempt.previous().iter().any(|url| url.scheme() == "https");
        if downgrade {
            let rejected = format!("rejected a redirect from HTTPS to plain HTTP URL {}", attempt.url());
            return attempt.error(rejected);
        }
        attempt.follow()
    })
}

/// One repository on one server. The token is sent only to URLs on the server's own origin
/// (scheme, host and port).
#[derive(Clone)]
pub struct Remote {
    http: reqwest::Client,
    base: String,
    /// The server URL as given, without a trailing slash, for messages.
    server: String,
    /// `scheme://host:port` of the server.
    origin: String,
    /// The GUN, or the base URL for [`Remote::from_base_url`], for messages.
    repository: String,
    auth: Arc<Mutex<ServerAuth>>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote").field("base", &self.base).field("auth", &*lock(&self.auth)).finish_non_exhaustive()
    }
}

impl Remote {
    /// Opens repository `gun` on `server` without authentication and with the system roots only.
    pub fn new(server: &str, gun: &Gun) -> Result<Remote, RemoteError> {
        Remote::with_options(server, gun, &RemoteOptions::default())
    }

    /// Opens repository `gun` on `server` with the token, credentials and CA certificates of
    /// `options`.
    pub fn with_options(server: &str, gun: &Gun, options: &RemoteOptions) -> Result<Remote, RemoteError> {
        let server = server.trim_end_matches('/');
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(RemoteError::InvalidUrl(server.to_owned()));
        }
        let origin = auth::server_key(server).map_err(|error| match error {
            AuthError::CredentialsInServerUrl => RemoteError::CredentialsInUrl,
            _ => RemoteError::InvalidUrl(server.to_owned()),
        })?;
        Ok(Remote {
            http: options.http_client()?,
            base: format!("{server}/v2/{gun}/_trust/tuf/"),
            server: server.to_owned(),
            origin,
            repository: gun.to_string(),
            auth: options.auth.clone(),
        })
    }

    /// Creates a remote whose metadata files are directly under `base_url`, for any TUF
    /// repository layout such as a conformance test server.
    pub fn from_base_url(base_url: &str) -> Result<Remote, RemoteError> {
        let gun = Gun::parse("unused").map_err(|_| RemoteError::InvalidUrl(base_url.to_owned()))?;
        let server = base_url.trim_end_matches('/');
        let mut remote = Remote::new(server, &gun)?;
        remote.base = format!("{server}/");
        remote.repository = remote.base.clone();
        Ok(remote)
    }

    /// Downloads any URL of at most `limit` bytes (target files). Returns `None` on 404. The token
    /// is sent only when `url` is on the server's origin.
    pub async fn fetch_url(&self, url: &str, limit: u64) -> Result<Option<Vec<u8>>, RemoteError> {
        let mut response = self.send(url, || self.http.get(url)).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(status_error(url, response).await);
        }
        if response.content_length().is_some_and(|length| length > limit) {
            return Err(RemoteError::TooLarge { file: url.to_owned(), limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|source| RemoteError::Unreachable { url: url.to_owned(), source })? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(RemoteError::TooLarge { file: url.to_owned(), limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    /// URL of a metadata file; `file` must already be percent-encoded where needed.
    pub fn url(&self, file: &str) -> String {
        format!("{}{file}", self.base)
    }

    /// Downloads a metadata file of at most `limit` bytes. Returns `None` on 404.
    pub async fn fetch(&self, file: &str, limit: u64) -> Result<Option<Vec<u8>>, RemoteError> {
        self.fetch_url(&self.url(file), limit).await
    }

    /// Fetches a server-held public key (`timestamp` or `snapshot`).
    pub async fn server_key(&self, role: &str) -> Result<Value, RemoteError> {
        let file = format!("{role}.key");
        let url = self.url(&file);
        let response = self.send(&url, || self.http.get(&url)).await?;
        if !response.status().is_success() {
            return Err(status_error(&file, response).await);
        }
        response.json().await.map_err(|source| RemoteError::Unreachable { url, source })
    }

    /// Asks the server for a new pending key of `role` (`timestamp` or `snapshot`), to be listed
    /// in the next root.
    pub async fn rotate_server_key(&self, role: &str) -> Result<Value, RemoteError> {
        let file = format!("{role}.key");
        let url = self.url(&file);
        let response = self.send(&url, || self.http.post(&url)).await?;
        if !response.status().is_success() {
            return Err(status_error(&file, response).await);
        }
        response.json().await.map_err(|source| RemoteError::Unreachable { url, source })
    }

    /// Uploads signed roles in one atomic update.
    pub async fn upload(&self, parts: Vec<(String, Vec<u8>)>) -> Result<(), RemoteError> {
        // A multipart form cannot be cloned, so it is built again if the request is retried with
        // a new token.
        let form = || {
            let mut form = reqwest::multipart::Form::new();
            for (role, bytes) in &parts {
                let part = reqwest::multipart::Part::bytes(bytes.clone()).file_name(role.clone());
                form = form.part("files", part);
            }
            form
        };
        let url = self.base.clone();
        let response = self.send(&url, || self.http.post(&url).multipart(form())).await?;
        if !response.status().is_success() {
            return Err(status_error("the upload", response).await);
        }
        Ok(())
    }

    /// Deletes the repository's metadata on the server.
    pub async fn delete(&self) -> Result<(), RemoteError> {
        let url = self.base.clone();
        let response = self.send(&url, || self.http.delete(&url)).await?;
        if !response.status().is_success() && response.status() != reqwest::StatusCode::NOT_FOUND {
            return Err(status_error("the repository", response).await);
        }
        Ok(())
    }

    /// Sends the request that `build` makes, with the token when `url` is on the server's origin.
    /// On a 401 with a Bearer challenge whose realm is a token service URL, and with stored
    /// credentials, fetches a new token from that realm, keeps it for later requests and sends
    /// the request once more.
    async fn send(&self, url: &str, build: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response, RemoteError> {
        let own_origin = auth::server_key(url).is_ok_and(|origin| origin == self.origin);
        let token = if own_origin { lock(&self.auth).token.clone() } else { None };
        let response = self.send_once(url, &build, token.as_ref()).await?;
        if !own_origin || response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }

        let challenge = auth::bearer_challenge(response.headers()).unwrap_or_default();
        let scope = challenge.scope.clone().unwrap_or_else(|| "no scope in the challenge".to_owned());
        let Some(credentials) = lock(&self.auth).credentials.clone() else {
            return Err(self.unauthorized(scope, token.is_some()));
        };
        let realm = auth::realm_url(&challenge, &self.server).map_err(|source| self.auth_error(source))?;
        let Some(realm) = realm else {
            return Err(self.unauthorized(scope, token.is_some()));
        };

        let new_token = auth::fetch_token(&self.http, &realm, &challenge, &credentials)
            .await
            .map_err(|source| self.auth_error(source))?;
        lock(&self.auth).token = Some(new_token.clone());
        let retried = self.send_once(url, &build, Some(&new_token)).await?;
        if retried.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(scope, true));
        }
        Ok(retried)
    }

    async fn send_once(
        &self,
        url: &str,
        build: &impl Fn() -> reqwest::RequestBuilder,
        token: Option<&Zeroizing<String>>,
    ) -> Result<reqwest::Response, RemoteError> {
        let mut request = build();
        if let Some(token) = token {
            request = request.bearer_auth(token.as_str());
        }
        request.send().await.map_err(|source| match crate::registry::tls_failure(&source) {
            Some(crate::registry::TlsFailure::UntrustedCertificate) => RemoteError::UntrustedCertificate { url: url.to_owned(), source },
            _ => RemoteError::Unreachable { url: url.to_owned(), source },
        })
    }

    fn unauthorized(&self, scope: String, token_sent: bool) -> RemoteError {
        let (gun, server) = (self.repository.clone(), self.server.clone());
        if token_sent {
            RemoteError::TokenRejected { gun, scope, server }
        } else {
            RemoteError::Unauthorized { gun, scope, server }
        }
    }

    fn auth_error(&self, source: AuthError) -> RemoteError {
        RemoteError::Auth { gun: self.repository.clone(), source }
    }
}

async fn status_error(file: &str, response: reqwest::Response) -> RemoteError {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let error = &body["errors"][0];
    RemoteError::Status {
        file: file.to_owned(),
        status,
        code: error["code"].as_str().unwrap_or_default().to_owned(),
        message: error["message"].as_str().unwrap_or("no error message").to_owned(),
        detail: error["detail"].clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;
    use crate::auth::Credentials;

    const TOKEN: &str = "tok-remote-unit";

    /// Request heads seen by a [`serve`] listener.
    type Seen = Arc<Mutex<Vec<String>>>;

    /// Serves HTTP/1.1 on 127.0.0.1 for at most 20 connections, one request each, responding
    /// with `respond(head)`. Returns the base URL and the request heads seen.
    async fn serve(respond: fn(&str, u16) -> String) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Seen = Arc::default();
        let recorded = seen.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                recorded.lock().unwrap().push(head.clone());
                let _ = stream.write_all(respond(&head, port).as_bytes()).await;
            }
        });
        (format!("http://127.0.0.1:{port}"), seen)
    }

    fn response(status: &str, extra_headers: &str, body: &str) -> String {
        format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}", body.len())
    }

    /// Responds like a trust server that requires `Bearer tok-remote-unit` and names a token
    /// service at `/token` on the same listener, which accepts alice:pw.
    fn trust_server(head: &str, port: u16) -> String {
        if head.starts_with("get /token") {
            // "alice:pw" in base64.
            if head.contains("authorization: basic ywxpy2u6chc=") {
                return response("200 OK", "content-type: application/json\r\n", &format!("{{\"token\":\"{TOKEN}\"}}"));
            }
            return response("401 Unauthorized", "", "");
        }
        if head.contains(&format!("authorization: bearer {TOKEN}")) {
            return response("404 Not Found", "", "");
        }
        let challenge = format!(
            "www-authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"signet\",scope=\"repository:example.com/app:pull\"\r\n"
        );
        response("401 Unauthorized", &challenge, r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
    }

    fn gun() -> Gun {
        Gun::parse("example.com/app").unwrap()
    }

    fn options(token: Option<&str>, credentials: Option<(&str, &str)>) -> RemoteOptions {
        let auth = ServerAuth {
            token: token.map(|token| Zeroizing::new(token.to_owned())),
            credentials: credentials.map(|(username, password)| Credentials {
                username: username.to_owned(),
                password: Zeroizing::new(password.to_owned()),
            }),
        };
        RemoteOptions::new(auth, Vec::new())
    }

    #[tokio::test]
    async fn fetch_sends_token() {
        let (server, seen) = serve(trust_server).await;
        let remote = Remote::with_options(&server, &gun(), &options(Some(TOKEN), None)).unwrap();
        assert_eq!(remote.fetch("1.root.json", 1024).await.unwrap(), None);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn unauthorized_without_token_names_login() {
        let (server, _) = serve(trust_server).await;
        let remote = Remote::with_options(&server, &gun(), &options(None, None)).unwrap();
        let error = remote.fetch("1.root.json", 1024).await.unwrap_err();
        assert!(matches!(error, RemoteError::Unauthorized { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("repository:example.com/app:pull"), "{message}");
        assert!(message.contains(&format!("signet login {server}")), "{message}");
    }

    #[tokio::test]
    async fn rejected_token_not_in_error() {
        let (server, _) = serve(trust_server).await;
        let remote = Remote::with_options(&server, &gun(), &options(Some("tok-wrong"), None)).unwrap();
        let error = remote.fetch("1.root.json", 1024).await.unwrap_err();
        assert!(matches!(error, RemoteError::TokenRejected { .. }), "{error:?}");
        assert!(!format!("{error} {error:?}").contains("tok-wrong"));
    }

    #[tokio::test]
    async fn challenge_fetches_token_once() {
        let (server, seen) = serve(trust_server).await;
        let shared = options(None, Some(("alice", "pw")));
        let remote = Remote::with_options(&server, &gun(), &shared).unwrap();
        assert_eq!(remote.fetch("1.root.json", 1024).await.unwrap(), None);

        let heads = seen.lock().unwrap().clone();
        assert_eq!(heads.len(), 3, "{heads:?}");
        assert!(heads[1].starts_with("get /token?service=signet&scope=repository%3aexample.com%2fapp%3apull"), "{}", heads[1]);
        assert!(!heads[1].contains("bearer"), "{}", heads[1]);
        assert!(heads[2].contains(&format!("authorization: bearer {TOKEN}")));

        // A second remote made from the same options reuses the fetched token.
        let again = Remote::with_options(&server, &gun(), &shared).unwrap();
        assert_eq!(again.fetch("2.root.json", 1024).await.unwrap(), None);
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn wrong_password_fails_at_realm() {
        let (server, _) = serve(trust_server).await;
        let remote = Remote::with_options(&server, &gun(), &options(None, Some(("alice", "wrong-pw")))).unwrap();
        let error = remote.fetch("1.root.json", 1024).await.unwrap_err();
        assert!(matches!(error, RemoteError::Auth { source: AuthError::CredentialsRejected { .. }, .. }), "{error:?}");
        assert!(!format!("{error:?}").contains("wrong-pw"));
    }

    #[tokio::test]
    async fn token_not_sent_to_other_origin() {
        let (server, _) = serve(trust_server).await;
        let (other, seen) = serve(|_, _| response("200 OK", "", "target")).await;
        let remote = Remote::with_options(&server, &gun(), &options(Some(TOKEN), None)).unwrap();
        let body = remote.fetch_url(&format!("{other}/targets/file"), 1024).await.unwrap();
        assert_eq!(body.as_deref(), Some(&b"target"[..]));
        let heads = seen.lock().unwrap().clone();
        assert!(!heads[0].contains("authorization"), "{}", heads[0]);
    }

    #[test]
    fn debug_redacts_token_and_password() {
        let remote = Remote::with_options("https://signet.example.com", &gun(), &options(Some("tok-secret"), Some(("alice", "pw-secret")))).unwrap();
        let debug = format!("{remote:?} {:?}", options(Some("tok-secret"), Some(("alice", "pw-secret"))));
        assert!(!debug.contains("tok-secret"), "{debug}");
        assert!(!debug.contains("pw-secret"), "{debug}");
    }

    #[test]
    fn rejects_credentials_in_server_url() {
        let error = Remote::new("https://alice:pw-secret@signet.example.com", &gun()).unwrap_err();
        assert!(!error.to_string().contains("pw-secret"), "{error}");
    }
}
