//! Authentication to the trust server: bearer tokens, the `signet login` credentials store and
//! the exchange of stored credentials for a token at a Docker-registry-style token service.
//!
//! No error, log line or `Debug` output here contains a token, a password or an `Authorization`
//! header.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize as _, Zeroizing};

use crate::registry::parse_challenges;

/// Name of the file under the signet home that contains a bearer token for the trust server.
pub const TOKEN_FILE: &str = "token";

/// Name of the file under the signet home that contains the `signet login` credentials.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// Maximum size of a token service response and of the credentials file, in bytes.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 64 * 1024;
const MAX_CREDENTIALS_FILE_BYTES: u64 = 1024 * 1024;

/// A failed authentication step or an invalid token or credentials file. No variant carries a
/// token or password.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid server URL {0:?}; use http://HOST:PORT or https://HOST:PORT")]
    InvalidServerUrl(String),

    #[error("the server URL contains a user name or password; pass credentials with `signet login` instead")]
    CredentialsInServerUrl,

    #[error("the token from {origin} is empty")]
    EmptyToken { origin: String },

    #[error("the token from {origin} contains characters that are not allowed in an HTTP header")]
    InvalidToken { origin: String },

    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is accessible by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    InsecurePermissions { path: PathBuf, mode: u32 },

    #[error("invalid credentials file {path}: {reason}")]
    InvalidCredentialsFile { path: PathBuf, reason: &'static str },

    #[error("invalid authentication challenge from {server}: {reason}")]
    InvalidChallenge { server: String, reason: &'static str },

    #[error("rejected the token service URL {realm}: it is plain HTTP while the trust server {server} uses HTTPS")]
    PlainHttpRealm { realm: String, server: String },

    #[error("cannot reach the trust server at {url}")]
    ServerUnreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("cannot reach the token service at {realm}")]
    RealmUnreachable {
        realm: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("the token service at {realm} rejected the credentials of user {username:?} (status {status})")]
    CredentialsRejected { realm: String, username: String, status: u16 },

    #[error("the token service at {realm} returned status {status}")]
    RealmStatus { realm: String, status: u16 },

    #[error("invalid response from the token service at {realm}: {reason}")]
    InvalidTokenResponse { realm: String, reason: &'static str },
}

/// A user name and password for a token service, as stored by `signet login`.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// Authentication settings for one trust server: a bearer token sent with every request, and
/// credentials exchanged for a new token when the server rejects a request with a Bearer
/// challenge.
#[derive(Clone, Default)]
pub struct ServerAuth {
    pub token: Option<Zeroizing<String>>,
    pub credentials: Option<Credentials>,
}

impl fmt::Debug for ServerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAuth")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// Trims a token and checks that it can be sent in an `Authorization` header. `origin` names
/// where the token came from, for the error message.
pub fn check_token(token: &str, origin: &str) -> Result<Zeroizing<String>, AuthError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::EmptyToken { origin: origin.to_owned() });
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthError::InvalidToken { origin: origin.to_owned() });
    }
    Ok(Zeroizing::new(token.to_owned()))
}

/// Reads the token from `home/token`. Returns `None` when the file does not exist, and rejects
/// a file that group or others can access.
pub fn read_token_file(home: &Path) -> Result<Option<Zeroizing<String>>, AuthError> {
    let path = home.join(TOKEN_FILE);
    if !path.exists() {
        return Ok(None);
    }
    check_private(&path)?;
    let text = Zeroizing::new(
        fs::read_to_string(&path).map_err(|source| AuthError::Io { action: "read token file", path: path.clone(), source })?,
    );
    check_token(&text, &path.display().to_string()).map(Some)
}

/// Normalizes a server URL to `scheme://host:port`, the key of the credentials store. The port is
/// written even when it is the scheme's default, and the host is lowercased.
pub fn server_key(server: &str) -> Result<String, AuthError> {
    let invalid = || AuthError::InvalidServerUrl(server.to_owned());
    let url = reqwest::Url::parse(server.trim()).map_err(|_| invalid())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AuthError::CredentialsInServerUrl);
    }
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid());
    }
    let host = url.host_str().ok_or_else(invalid)?;
    let port = url.port_or_known_default().ok_or_else(invalid)?;
    Ok(format!("{}://{}:{port}", url.scheme(), host.to_ascii_lowercase()))
}

/// The `signet login` credentials in `home/credentials.json`, keyed by [`server_key`]. The file
/// has mode 0600 and is replaced atomically on every change.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

/// The JSON layout of the credentials file.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    servers: BTreeMap<String, StoredCredentials>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredCredentials {
    username: String,
    password: String,
}

impl Drop for StoredCredentials {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

impl CredentialStore {
    /// Opens the store under the signet home `home`. Nothing is read or created until used.
    pub fn new(home: &Path) -> CredentialStore {
        CredentialStore { path: home.join(CREDENTIALS_FILE) }
    }

    /// Returns the path of the credentials file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the credentials stored for `server`, if any.
    pub fn get(&self, server: &str) -> Result<Option<Credentials>, AuthError> {
        let key = server_key(server)?;
        let file = self.load()?;
        Ok(file.servers.get(&key).map(|stored| Credentials {
            username: stored.username.clone(),
            password: Zeroizing::new(stored.password.clone()),
        }))
    }

    /// Stores `credentials` for `server`, replacing any stored before.
    pub fn store(&self, server: &str, credentials: &Credentials) -> Result<(), AuthError> {
        let key = server_key(server)?;
        let mut file = self.load()?;
        let stored = StoredCredentials { username: credentials.username.clone(), password: credentials.password.to_string() };
        file.servers.insert(key, stored);
        self.save(&file)
    }

    /// Removes the credentials for `server`. Returns false when none were stored.
    pub fn remove(&self, server: &str) -> Result<bool, AuthError> {
        let key = server_key(server)?;
        let mut file = self.load()?;
        if file.servers.remove(&key).is_none() {
            return Ok(false);
        }
        self.save(&file)?;
        Ok(true)
    }

    fn load(&self) -> Result<CredentialsFile, AuthError> {
        if !self.path.exists() {
            return Ok(CredentialsFile::default());
        }
        check_private(&self.path)?;
        let io_error = |source| AuthError::Io { action: "read credentials file", path: self.path.clone(), source };
        let length = fs::metadata(&self.path).map_err(io_error)?.len();
        if length > MAX_CREDENTIALS_FILE_BYTES {
            return Err(self.invalid("the file is larger than 1 MiB"));
        }
        let text = Zeroizing::new(fs::read(&self.path).map_err(io_error)?);
        // The serde_json message can quote part of the file, which may be a password, so only a
        // fixed reason is reported.
        serde_json::from_slice(&text).map_err(|_| self.invalid("expected {\"servers\": {URL: {\"username\", \"password\"}}}"))
    }

    /// Writes the file to a temporary file with mode 0600 in the same directory, syncs it and
    /// renames it over the old one.
    fn save(&self, file: &CredentialsFile) -> Result<(), AuthError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let io_error = |action, path: &Path| {
            let path = path.to_owned();
            move |source| AuthError::Io { action, path, source }
        };
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_error("create directory", dir))?;

        let bytes = Zeroizing::new(serde_json::to_vec_pretty(file).map_err(|_| self.invalid("the credentials cannot be written as JSON"))?);
        let temp_path = dir.join(format!(".{CREDENTIALS_FILE}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&temp_path);
        let mut temp = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp_path)
            .map_err(io_error("create", &temp_path))?;
        let written = temp.write_all(&bytes).and_then(|()| temp.write_all(b"\n")).and_then(|()| temp.sync_all());
        if let Err(source) = written {
            let _ = fs::remove_file(&temp_path);
            return Err(AuthError::Io { action: "write", path: temp_path, source });
        }
        fs::rename(&temp_path, &self.path).map_err(io_error("replace", &self.path))?;
        fs::File::open(dir).and_then(|dir| dir.sync_all()).map_err(io_error("sync directory", dir))
    }

    fn invalid(&self, reason: &'static str) -> AuthError {
        AuthError::InvalidCredentialsFile { path: self.path.clone(), reason }
    }
}

/// Rejects a file that group or others can access.
fn check_private(path: &Path) -> Result<(), AuthError> {
    let metadata =
        fs::metadata(path).map_err(|source| AuthError::Io { action: "read metadata of", path: path.to_owned(), source })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(AuthError::InsecurePermissions { path: path.to_owned(), mode });
    }
    Ok(())
}

/// The parameters of a `WWW-Authenticate: Bearer` challenge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    /// Token service URL, or for the server's built-in issuer only a name.
    pub realm: Option<String>,
    pub service: Option<String>,
    /// Requested access, such as `repository:example.com/app:pull,push`.
    pub scope: Option<String>,
}

/// Returns the first Bearer challenge in the `WWW-Authenticate` headers, if any.
pub fn bearer_challenge(headers: &reqwest::header::HeaderMap) -> Option<BearerChallenge> {
    let challenge = headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(parse_challenges)
        .find(|challenge| challenge.scheme.eq_ignore_ascii_case("bearer"))?;
    let param = |name| challenge.param(name).map(str::to_owned);
    Some(BearerChallenge { realm: param("realm"), service: param("service"), scope: param("scope") })
}

/// Parses the challenge's realm as a token service URL. Returns `None` when the realm is missing
/// or is not an http or https URL, as for a server that only accepts tokens from its operator.
/// Rejects a plain HTTP realm when the trust server `server` uses HTTPS.
pub fn realm_url(challenge: &BearerChallenge, server: &str) -> Result<Option<reqwest::Url>, AuthError> {
    let Some(realm) = challenge.realm.as_deref() else { return Ok(None) };
    let Ok(url) = reqwest::Url::parse(realm) else { return Ok(None) };
    match url.scheme() {
        "https" => Ok(Some(url)),
        "http" if server.starts_with("https://") => {
            Err(AuthError::PlainHttpRealm { realm: realm.to_owned(), server: server.to_owned() })
        }
        "http" => Ok(Some(url)),
        _ => Ok(None),
    }
}

/// Fetches a token from the token service at `realm` with HTTP Basic `credentials`, asking for
/// the challenge's service and scope. Accepts a JSON response with a `token` or `access_token`
/// string, as Docker registry token services send.
pub async fn fetch_token(
    http: &reqwest::Client,
    realm: &reqwest::Url,
    challenge: &BearerChallenge,
    credentials: &Credentials,
) -> Result<Zeroizing<String>, AuthError> {
    let realm_text = realm.to_string();
    let mut query = Vec::new();
    if let Some(service) = &challenge.service {
        query.push(("service", service.as_str()));
    }
    if let Some(scope) = &challenge.scope {
        query.push(("scope", scope.as_str()));
    }
    let response = http
        .get(realm.clone())
        .query(&query)
        .basic_auth(&credentials.username, Some(credentials.password.as_str()))
        .send()
        .await
        .map_err(|source| AuthError::RealmUnreachable { realm: realm_text.clone(), source: source.without_url() })?;

    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(AuthError::CredentialsRejected {
            realm: realm_text,
            username: credentials.username.clone(),
            status: status.as_u16(),
        });
    }
    if !status.is_success() {
        return Err(AuthError::RealmStatus { realm: realm_text, status: status.as_u16() });
    }

    let body = read_token_response(&realm_text, response).await?;
    let invalid = |reason| AuthError::InvalidTokenResponse { realm: realm_text.clone(), reason };
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| invalid("the response is not JSON"))?;
    let token = ["token", "access_token"]
        .iter()
        .find_map(|field| json[*field].as_str().filter(|token| !token.is_empty()))
        .ok_or_else(|| invalid("the response has no \"token\" or \"access_token\" string"))?;
    check_token(token, &realm_text)
}

async fn read_token_response(realm: &str, mut response: reqwest::Response) -> Result<Zeroizing<Vec<u8>>, AuthError> {
    let too_large = || AuthError::InvalidTokenResponse { realm: realm.to_owned(), reason: "the response is larger than 64 KiB" };
    if response.content_length().is_some_and(|length| length > MAX_TOKEN_RESPONSE_BYTES) {
        return Err(too_large());
    }
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| AuthError::RealmUnreachable { realm: realm.to_owned(), source: source.without_url() })?
    {
        if body.len() as u64 + chunk.len() as u64 > MAX_TOKEN_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Result of checking credentials before `signet login` stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginCheck {
    /// The token service at this realm issued a token for the credentials.
    Verified { realm: String },
    /// `GET /v2/` returned no Bearer challenge with a token service URL, so nothing could check
    /// the credentials.
    NotChecked,
}

/// Checks `credentials` for the trust server `server`: sends `GET /v2/`, and when the server
/// returns a Bearer challenge with a token service URL, fetches a token from it.
pub async fn check_login(
    http: &reqwest::Client,
    server: &str,
    credentials: &Credentials,
) -> Result<LoginCheck, AuthError> {
    let server = server.trim_end_matches('/');
    let url = format!("{server}/v2/");
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|source| AuthError::ServerUnreachable { url: url.clone(), source: source.without_url() })?;
    if response.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(LoginCheck::NotChecked);
    }
    let Some(challenge) = bearer_challenge(response.headers()) else { return Ok(LoginCheck::NotChecked) };
    let Some(realm) = realm_url(&challenge, server)? else { return Ok(LoginCheck::NotChecked) };
    fetch_token(http, &realm, &challenge, credentials).await?;
    Ok(LoginCheck::Verified { realm: realm.to_string() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> reqwest::header::HeaderMap {
        let mut map = reqwest::header::HeaderMap::new();
        for value in values {
            map.append(reqwest::header::WWW_AUTHENTICATE, value.parse().unwrap());
        }
        map
    }

    fn credentials() -> Credentials {
        Credentials { username: "alice".to_owned(), password: Zeroizing::new("s3cret-pass".to_owned()) }
    }

    #[test]
    fn bearer_challenge_reads_realm_service_scope() {
        let map = headers(&[
            r#"Bearer realm="https://auth.example.com/token",service="signet",scope="repository:example.com/app:pull,push""#,
        ]);
        let challenge = bearer_challenge(&map).unwrap();
        assert_eq!(challenge.realm.as_deref(), Some("https://auth.example.com/token"));
        assert_eq!(challenge.service.as_deref(), Some("signet"));
        assert_eq!(challenge.scope.as_deref(), Some("repository:example.com/app:pull,push"));
    }

    #[test]
    fn bearer_challenge_skips_basic() {
        let map = headers(&[r#"Basic realm="x""#, r#"Bearer realm="signet",scope="repository:a/b:*""#]);
        let challenge = bearer_challenge(&map).unwrap();
        assert_eq!(challenge.realm.as_deref(), Some("signet"));
        assert_eq!(challenge.scope.as_deref(), Some("repository:a/b:*"));
        assert_eq!(bearer_challenge(&headers(&[r#"Basic realm="x""#])), None);
        assert_eq!(bearer_challenge(&headers(&[])), None);
    }

    #[test]
    fn realm_url_rules() {
        let challenge = |realm: &str| BearerChallenge { realm: Some(realm.to_owned()), ..BearerChallenge::default() };
        let https = realm_url(&challenge("https://auth.example.com/token"), "https://signet.example.com").unwrap();
        assert_eq!(https.unwrap().as_str(), "https://auth.example.com/token");
        let http = realm_url(&challenge("http://127.0.0.1:5001/token"), "http://127.0.0.1:4443").unwrap();
        assert!(http.is_some());
        let downgrade = realm_url(&challenge("http://auth.example.com/token"), "https://signet.example.com");
        assert!(matches!(downgrade, Err(AuthError::PlainHttpRealm { .. })));
        assert_eq!(realm_url(&challenge("signet"), "https://signet.example.com").unwrap(), None);
        assert_eq!(realm_url(&challenge("ftp://auth.example.com/"), "https://signet.example.com").unwrap(), None);
        assert_eq!(realm_url(&BearerChallenge::default(), "https://signet.example.com").unwrap(), None);
    }

    #[test]
    fn server_key_normalizes() {
        assert_eq!(server_key("https://Signet.Example.com").unwrap(), "https://signet.example.com:443");
        assert_eq!(server_key("http://127.0.0.1:4443/").unwrap(), "http://127.0.0.1:4443");
        assert_eq!(server_key("http://localhost/some/path").unwrap(), "http://localhost:80");
        assert!(matches!(server_key("signet.example.com"), Err(AuthError::InvalidServerUrl(_))));
        assert!(matches!(server_key("ftp://signet.example.com"), Err(AuthError::InvalidServerUrl(_))));
        assert!(matches!(server_key("https://bob:pw@signet.example.com"), Err(AuthError::CredentialsInServerUrl)));
    }

    #[test]
    fn check_token_trims_and_rejects() {
        assert_eq!(check_token("  abc.def-ghi \n", "test").unwrap().as_str(), "abc.def-ghi");
        assert!(matches!(check_token(" \n", "test"), Err(AuthError::EmptyToken { .. })));
        assert!(matches!(check_token("abc def", "test"), Err(AuthError::InvalidToken { .. })));
        let error = check_token("bad\u{7f}token", "test").unwrap_err().to_string();
        assert!(!error.contains("token\u{7f}"), "{error}");
    }

    #[test]
    fn credentials_file_mode_0600() {
        let home = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(&home.path().join("signet"));
        store.store("http://127.0.0.1:4443", &credentials()).unwrap();
        let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(home.path().join("signet")).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
    }

    #[test]
    fn credentials_round_trip_by_server_key() {
        let home = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(home.path());
        assert!(store.get("http://127.0.0.1:4443").unwrap().is_none());
        store.store("http://127.0.0.1:4443/", &credentials()).unwrap();

        let found = store.get("HTTP://127.0.0.1:4443").unwrap().unwrap();
        assert_eq!(found.username, "alice");
        assert_eq!(found.password.as_str(), "s3cret-pass");
        assert!(store.get("http://127.0.0.1:4444").unwrap().is_none());

        assert!(store.remove("http://127.0.0.1:4443").unwrap());
        assert!(store.get("http://127.0.0.1:4443").unwrap().is_none());
        assert!(!store.remove("http://127.0.0.1:4443").unwrap());
    }

    #[test]
    fn credentials_file_rejects_open_mode() {
        let home = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(home.path());
        store.store("http://127.0.0.1:4443", &credentials()).unwrap();
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let error = store.get("http://127.0.0.1:4443").unwrap_err();
        assert!(matches!(error, AuthError::InsecurePermissions { mode: 0o644, .. }), "{error:?}");
        assert!(error.to_string().contains("chmod 600"));
    }

    #[test]
    fn credentials_file_errors_hide_password() {
        let home = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(home.path());
        let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(store.path()).unwrap();
        file.write_all(br#"{"servers": {"http://h:1": {"username": "alice", "password": 12345678, "extra": "hunter2"}}}"#).unwrap();
        let error = format!("{:?} {}", store.get("http://h:1").unwrap_err(), store.get("http://h:1").unwrap_err());
        assert!(!error.contains("hunter2"), "{error}");
        assert!(!error.contains("12345678"), "{error}");
    }

    #[test]
    fn token_file_read_and_mode_checked() {
        let home = tempfile::tempdir().unwrap();
        assert!(read_token_file(home.path()).unwrap().is_none());

        let path = home.path().join(TOKEN_FILE);
        fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path).unwrap().write_all(b"tok-123\n").unwrap();
        assert_eq!(read_token_file(home.path()).unwrap().unwrap().as_str(), "tok-123");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let error = read_token_file(home.path()).unwrap_err();
        assert!(matches!(error, AuthError::InsecurePermissions { .. }), "{error:?}");
        assert!(!error.to_string().contains("tok-123"));
    }

    #[test]
    fn debug_redacts_secrets() {
        let auth = ServerAuth { token: Some(Zeroizing::new("tok-secret".to_owned())), credentials: Some(credentials()) };
        let debug = format!("{auth:?}");
        assert!(!debug.contains("tok-secret"), "{debug}");
        assert!(!debug.contains("s3cret-pass"), "{debug}");
        assert!(debug.contains("alice"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}
