//! Reading manifests from an OCI distribution registry: resolving a tag to the digest, size and
//! media type of the manifest the registry serves for it, with the registry's token or Basic
//! authentication and credentials from a Docker config file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use signet_core::Gun;
use zeroize::Zeroizing;

use crate::reference::Digest;

/// Time allowed for connecting and for a whole request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Maximum manifest size. The distribution registry (`maxManifestBodySize` in its manifest
/// handler) and containers/image both limit manifests to 4 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Maximum size of a token service response and of an error body read for its message.
const MAX_SMALL_BODY_BYTES: u64 = 1024 * 1024;

/// Maximum number of redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

/// Maximum number of characters of a registry's error message copied into an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// Docker Hub's name in image references and the host that serves its registry API.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// Manifest media types this module accepts, in the order sent in `Accept`.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Content types that do not identify a manifest format. With one of these, or none, the media
/// type comes from the manifest's `mediaType` field.
const GENERIC_CONTENT_TYPES: [&str; 3] = ["application/json", "application/octet-stream", "text/plain"];

/// Settings for reaching registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// HOST[:PORT] entries reached over plain HTTP (the command warns); all others use HTTPS.
    pub insecure: Vec<String>,
    /// Extra PEM CA certificate files trusted for HTTPS, besides the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Docker config file with `auths`; None reads no credentials. [`default_docker_config`]
    /// finds the file the Docker CLI would use.
    pub docker_config: Option<PathBuf>,
}

/// The manifest a registry serves for a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// SHA-256 of the manifest bytes, computed by this client.
    pub digest: Digest,
    /// Length of the manifest in bytes.
    pub size: u64,
    /// One of [`MANIFEST_MEDIA_TYPES`].
    pub media_type: String,
}

/// A failed registry request or an invalid setting. No variant carries a password, token or
/// `Authorization` header.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read CA certificate file {path}")]
    CaFileUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid CA certificate file {path}: {reason}")]
    InvalidCaFile { path: PathBuf, reason: String },

    #[error("cannot read Docker config file {path}")]
    DockerConfigUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    // The serde_json error is not attached because its message can quote a value from the
    // file, and the file contains passwords.
    #[error("invalid Docker config file {path}: not a JSON object with an optional \"auths\" map (line {line}, column {column})")]
    InvalidDockerConfig { path: PathBuf, line: usize, column: usize },

    #[error("invalid Docker config file {path}: the \"auth\" value for {key:?} {reason}")]
    InvalidDockerAuth { path: PathBuf, key: String, reason: &'static str },

    #[error("failed to set up the HTTP client")]
    Client(#[source] reqwest::Error),

    #[error("invalid tag {0:?}: a tag is 1 to 128 characters of [A-Za-z0-9_.-] and does not start with '.' or '-'")]
    InvalidTag(String),

    #[error("plain HTTP to {host} is not allowed (reached through {url}); list {host} as an insecure registry to allow it")]
    PlainHttpRefused { host: String, url: String },

    #[error("TLS certificate of {host} is not trusted; if the registry uses a private CA, add the CA certificate file to the trusted CA files")]
    UntrustedCertificate {
        host: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("cannot reach the registry at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("manifest {reference} not found: the registry has no such repository or tag")]
    NotFound { reference: String },

    #[error("not authorized to pull {reference} from {host}: {hint}")]
    Unauthorized { reference: String, host: String, hint: String },

    #[error("invalid authentication challenge from {host}: {reason}")]
    InvalidChallenge { host: String, reason: String },

    #[error("invalid response from the token service at {realm}: {reason}")]
    InvalidToken { realm: String, reason: &'static str },

    #[error("{url} returned HTTP {status} {code}: {message}")]
    Status { url: String, status: u16, code: String, message: String },

    #[error("response from {url} is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },

    #[error("invalid manifest for {reference}: {reason}")]
    InvalidManifest { reference: String, reason: String },

    #[error("unsupported manifest media type {media_type:?} for {reference}; expected an OCI image manifest or index, or a Docker schema 2 manifest or manifest list")]
    UnsupportedMediaType { reference: String, media_type: String },
}

/// A registry client. One instance serves any number of registries and keeps nothing on disk.
pub struct Registry {
    http: reqwest::Client,
    insecure: Vec<String>,
    auths: DockerAuths,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("insecure", &self.insecure).field("auths", &self.auths).finish_non_exhaustive()
    }
}

impl Registry {
    /// Builds a client that trusts the system roots and `options.ca_files`, and loads the Docker
    /// config file. Fails on an unreadable or invalid CA file or Docker config file.
    pub fn new(options: RegistryOptions) -> Result<Registry, RegistryError> {
        let insecure: Vec<String> = options.insecure.iter().map(|host| host.to_ascii_lowercase()).collect();

        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("signet/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect_policy(insecure.clone()));
        for path in &options.ca_files {
            for certificate in read_ca_file(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(RegistryError::Client)?;

        let auths = match options.docker_config {
            Some(path) => DockerAuths::load(&path)?,
            None => DockerAuths::default(),
        };
        Ok(Registry { http, insecure, auths })
    }

    /// Fetches the manifest that `name:tag` points to and returns its digest, size and media
    /// type. The digest is computed here from the bytes received, and a `Docker-Content-Digest`
    /// header that disagrees with it is rejected.
    pub async fn resolve(&self, name: &Gun, tag: &str) -> Result<ManifestInfo, RegistryError> {
        check_tag(tag)?;
        let (host, path) = endpoint(name);
        let reference = format!("{name}:{tag}");
        let scheme = if self.is_insecure(&host) { "http" } else { "https" };
        let url = format!("{scheme}://{host}/v2/{path}/manifests/{tag}");
        let credentials = self.auths.find(&host);

        let mut response = self.get_manifest(&url, &host, None).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            let authorization = self.authorize(&response, &host, &path, &reference, credentials).await?;
            response = self.get_manifest(&url, &host, Some(&authorization)).await?;
            if response.status() == reqwest::StatusCode::UNAUTHORIZED {
                return Err(self.unauthorized(&reference, &host, credentials.is_some()));
            }
        }

        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound { reference });
        }
        if status == reqwest::StatusCode::FORBIDDEN {
            return Err(self.unauthorized(&reference, &host, credentials.is_some()));
        }
        if !status.is_success() {
            let error = status_error(&url, response).await;
            if let RegistryError::Status { code, .. } = &error {
                if code == "MANIFEST_UNKNOWN" || code == "NAME_UNKNOWN" {
                    return Err(RegistryError::NotFound { reference });
                }
            }
            return Err(error);
        }

        let content_type = header_text(&response, reqwest::header::CONTENT_TYPE);
        let header_digest = header_text(&response, "docker-content-digest");
        let body = read_capped(&url, response, MAX_MANIFEST_BYTES).await?;
        manifest_info(&reference, content_type.as_deref(), header_digest.as_deref(), &body)
    }

    fn is_insecure(&self, host: &str) -> bool {
        is_listed(&self.insecure, host)
    }

    async fn get_manifest(
        &self,
        url: &str,
        host: &str,
        authorization: Option<&Authorization<'_>>,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut request = self.http.get(url).header(reqwest::header::ACCEPT, MANIFEST_MEDIA_TYPES.join(", "));
        request = match authorization {
            Some(Authorization::Basic(credentials)) => {
                request.basic_auth(&credentials.username, Some(credentials.password.as_str()))
            }
            Some(Authorization::Bearer(token)) => request.bearer_auth(token.as_str()),
            None => request,
        };
        request.send().await.map_err(|source| send_error(url, host, source))
    }

    /// Builds the authorization for a 401 response: a token from the realm for a Bearer
    /// challenge, the Docker config's credentials for a Basic one.
    async fn authorize<'a>(
        &self,
        response: &reqwest::Response,
        host: &str,
        path: &str,
        reference: &str,
        credentials: Option<&'a Credentials>,
    ) -> Result<Authorization<'a>, RegistryError> {
        let headers: Vec<&str> = response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let challenges: Vec<Challenge> = headers.iter().flat_map(|header| parse_challenges(header)).collect();

        if let Some(bearer) = challenges.iter().find(|c| c.scheme.eq_ignore_ascii_case("bearer")) {
            let token = self.fetch_token(bearer, host, path, reference, credentials).await?;
            return Ok(Authorization::Bearer(token));
        }
        if challenges.iter().any(|c| c.scheme.eq_ignore_ascii_case("basic")) {
            return match credentials {
                Some(credentials) => Ok(Authorization::Basic(credentials)),
                None => Err(self.unauthorized(reference, host, false)),
            };
        }
        Err(RegistryError::InvalidChallenge {
            host: host.to_owned(),
            reason: "the 401 response has no Bearer or Basic WWW-Authenticate challenge".to_owned(),
        })
    }

    /// Gets a pull token for `path` from the Bearer challenge's realm, sending the Docker config's
    /// credentials when there are any for `host`.
    async fn fetch_token(
        &self,
        challenge: &Challenge,
        host: &str,
        path: &str,
        reference: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Zeroizing<String>, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidChallenge { host: host.to_owned(), reason: reason.to_owned() };
        let realm = challenge.param("realm").ok_or_else(|| invalid("the Bearer challenge has no realm"))?;
        let realm_url = reqwest::Url::parse(realm).map_err(|_| invalid("the Bearer realm is not a valid URL"))?;
        match realm_url.scheme() {
            "https" => {}
            "http" if is_listed(&self.insecure, &url_host(&realm_url)) => {}
            "http" => return Err(RegistryError::PlainHttpRefused { host: url_host(&realm_url), url: realm.to_owned() }),
            _ => return Err(invalid("the Bearer realm is neither an https nor an http URL")),
        }

        let scope = format!("repository:{path}:pull");
        let mut query = vec![("scope", scope.as_str())];
        if let Some(service) = challenge.param("service") {
            query.push(("service", service));
        }
        let mut request = self.http.get(realm_url).query(&query);
        if let Some(credentials) = credentials {
            request = request.basic_auth(&credentials.username, Some(credentials.password.as_str()));
        }
        let response = request.send().await.map_err(|source| send_error(realm, host, source))?;

        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(self.unauthorized(reference, host, credentials.is_some()));
        }
        if !status.is_success() {
            return Err(status_error(realm, response).await);
        }
        let body = Zeroizing::new(read_capped(realm, response, MAX_SMALL_BODY_BYTES).await?);
        let bad_token = |reason| RegistryError::InvalidToken { realm: realm.to_owned(), reason };
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| bad_token("the response is not JSON"))?;
        let token = ["token", "access_token"]
            .iter()
            .find_map(|field| json[*field].as_str().filter(|token| !token.is_empty()))
            .ok_or_else(|| bad_token("the response has no \"token\" or \"access_token\" string"))?;
        Ok(Zeroizing::new(token.to_owned()))
    }

    fn unauthorized(&self, reference: &str, host: &str, had_credentials: bool) -> RegistryError {
        let config = match &self.auths.path {
            Some(path) => path.display().to_string(),
            None => "the Docker config file".to_owned(),
        };
        let registry = auth_key(host);
        let hint = if had_credentials {
            format!("the registry rejected the credentials for {registry} from {config}, or they do not allow pulling this repository; check them with `docker login {registry}`")
        } else if self.auths.uses_helpers {
            format!("{config} has no \"auths\" entry for {registry}, and it names a credential helper (credsStore or credHelpers), which Signet does not support; add an \"auths\" entry with an \"auth\" value for {registry}")
        } else {
            format!("no credentials for {registry} in {config}; run `docker login {registry}` or add an \"auths\" entry for it")
        };
        RegistryError::Unauthorized { reference: reference.to_owned(), host: host.to_owned(), hint }
    }
}

/// Splits a normalized name into the API base URL host and the repository path:
/// `docker.io/library/nginx` becomes host `registry-1.docker.io` and path `library/nginx`, and
/// `127.0.0.1:5000/team/app` becomes `127.0.0.1:5000` and `team/app`. A name without a registry
/// host names Docker Hub, with `library/` added to a single-component name as Docker does.
pub fn endpoint(name: &Gun) -> (String, String) {
    let name = name.as_str();
    let (host, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first.to_owned(), rest.to_owned())
        }
        _ if name.contains('/') => (DOCKER_HUB.to_owned(), name.to_owned()),
        _ => (DOCKER_HUB.to_owned(), format!("library/{name}")),
    };
    if host == DOCKER_HUB || host == "index.docker.io" {
        return (DOCKER_HUB_API_HOST.to_owned(), path);
    }
    (host, path)
}

/// Checks a response against the rules for a resolved manifest and describes it.
fn manifest_info(
    reference: &str,
    content_type: Option<&str>,
    header_digest: Option<&str>,
    body: &[u8],
) -> Result<ManifestInfo, RegistryError> {
    let invalid = |reason: String| RegistryError::InvalidManifest { reference: reference.to_owned(), reason };

    let sha256 = ring::digest::digest(&ring::digest::SHA256, body);
    let digest = Digest::from_sha256_hex(&hex::encode(sha256.as_ref()))
        .map_err(|_| invalid("the computed digest is not valid".to_owned()))?;
    if let Some(header) = header_digest {
        if header.trim() != digest.to_string() {
            return Err(invalid(format!(
                "the registry sent Docker-Content-Digest {header:?}, but the manifest it served has digest {digest}"
            )));
        }
    }

    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| invalid("the manifest is not valid JSON".to_owned()))?;
    if !json.is_object() {
        return Err(invalid("the manifest is not a JSON object".to_owned()));
    }
    let body_type = match json.get("mediaType") {
        None => None,
        Some(value) => Some(value.as_str().ok_or_else(|| invalid("the manifest's mediaType is not a string".to_owned()))?),
    };

    // A media type parameter such as "; charset=utf-8" is not part of the type.
    let header_type = content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .filter(|value| !value.is_empty() && !GENERIC_CONTENT_TYPES.contains(&value.as_str()));
    let media_type = match (header_type, body_type) {
        (Some(header), Some(body)) if !header.eq_ignore_ascii_case(body) => {
            return Err(invalid(format!(
                "the Content-Type header {header:?} differs from the manifest's mediaType {body:?}"
            )));
        }
        (Some(header), _) => header,
        (None, Some(body)) => body.to_ascii_lowercase(),
        (None, None) => {
            return Err(invalid("the response has no specific Content-Type and the manifest has no mediaType".to_owned()));
        }
    };
    if !MANIFEST_MEDIA_TYPES.contains(&media_type.as_str()) {
        return Err(RegistryError::UnsupportedMediaType { reference: reference.to_owned(), media_type });
    }

    Ok(ManifestInfo { digest, size: body.len() as u64, media_type })
}

fn check_tag(tag: &str) -> Result<(), RegistryError> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        && !tag.starts_with(['.', '-']);
    if !valid {
        return Err(RegistryError::InvalidTag(tag.to_owned()));
    }
    Ok(())
}

pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, RegistryError> {
    let invalid = |reason: &str| RegistryError::InvalidCaFile { path: path.to_owned(), reason: reason.to_owned() };
    let text =
        std::fs::read(path).map_err(|source| RegistryError::CaFileUnreadable { path: path.to_owned(), source })?;
    let blocks = pem::parse_many(&text).map_err(|_| invalid("the file is not valid PEM"))?;

    let mut certificates = Vec::new();
    for block in blocks.iter().filter(|block| block.tag() == "CERTIFICATE") {
        // reqwest checks the certificates only when it builds the client, and its error does
        // not name the file, so each one is checked here first.
        let der = rustls::pki_types::CertificateDer::from(block.contents().to_vec());
        rustls::RootCertStore::empty()
            .add(der)
            .map_err(|_| invalid("a CERTIFICATE block is not a valid X.509 CA certificate"))?;
        let certificate =
            reqwest::Certificate::from_der(block.contents()).map_err(|_| invalid("a CERTIFICATE block is not valid DER"))?;
        certificates.push(certificate);
    }
    if certificates.is_empty() {
        return Err(invalid("the file has no PEM CERTIFICATE block"));
    }
    Ok(certificates)
}

/// Returns the Docker config file the Docker CLI would read, `$DOCKER_CONFIG/config.json` or
/// `$HOME/.docker/config.json`, when it exists. `env` reads an environment variable.
pub fn default_docker_config(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let path = match env("DOCKER_CONFIG").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => PathBuf::from(env("HOME").filter(|home| !home.is_empty())?).join(".docker").join("config.json"),
    };
    path.is_file().then_some(path)
}

/// A user name and password from a Docker config file.
struct Credentials {
    username: String,
    password: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

enum Authorization<'a> {
    Basic(&'a Credentials),
    Bearer(Zeroizing<String>),
}

/// The `auths` entries of a Docker config file, keyed by normalized registry host.
#[derive(Debug, Default)]
struct DockerAuths {
    path: Option<PathBuf>,
    entries: BTreeMap<String, Credentials>,
    /// True when the file sets `credsStore` or `credHelpers`, which this module does not run.
    uses_helpers: bool,
}

#[derive(Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuthEntry>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct DockerAuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl DockerAuths {
    fn load(path: &Path) -> Result<DockerAuths, RegistryError> {
        let text = Zeroizing::new(
            std::fs::read(path).map_err(|source| RegistryError::DockerConfigUnreadable { path: path.to_owned(), source })?,
        );
        DockerAuths::parse(path, &text)
    }

    fn parse(path: &Path, text: &[u8]) -> Result<DockerAuths, RegistryError> {
        let file: DockerConfigFile = serde_json::from_slice(text).map_err(|error| RegistryError::InvalidDockerConfig {
            path: path.to_owned(),
            line: error.line(),
            column: error.column(),
        })?;

        let mut entries = BTreeMap::new();
        for (key, entry) in file.auths {
            let invalid = |reason| RegistryError::InvalidDockerAuth { path: path.to_owned(), key: key.clone(), reason };
            let auth = entry.auth.map(Zeroizing::new);
            let password = entry.password.map(Zeroizing::new);
            let credentials = match (auth.filter(|auth| !auth.is_empty()), entry.username, password) {
                (Some(auth), _, _) => {
                    let decoded = Zeroizing::new(
                        base64::engine::general_purpose::STANDARD
                            .decode(auth.trim())
                            .map_err(|_| invalid("is not valid base64"))?,
                    );
                    let text = std::str::from_utf8(&decoded).map_err(|_| invalid("is not UTF-8 text"))?;
                    let (username, password) =
                        text.split_once(':').ok_or_else(|| invalid("is not of the form user:password"))?;
                    Credentials { username: username.to_owned(), password: Zeroizing::new(password.to_owned()) }
                }
                (None, Some(username), Some(password)) if !username.is_empty() => Credentials { username, password },
                // An empty entry is what `docker login` leaves when a credential helper stores
                // the password.
                _ => continue,
            };
            // A key written exactly as host[:port] wins over a URL form of the same host.
            let normalized = auth_key(&key);
            if key.eq_ignore_ascii_case(&normalized) || !entries.contains_key(&normalized) {
                entries.insert(normalized, credentials);
            }
        }

        let uses_helpers = file.creds_store.is_some_and(|store| !store.is_empty()) || !file.cred_helpers.is_empty();
        Ok(DockerAuths { path: Some(path.to_owned()), entries, uses_helpers })
    }

    /// Returns the credentials for the registry at API host `host`.
    fn find(&self, host: &str) -> Option<&Credentials> {
        self.entries.get(&auth_key(host))
    }
}

/// Normalizes a Docker config `auths` key or a registry host to lowercase `host[:port]`: the
/// scheme and path are dropped, and Docker Hub's names become `docker.io`.
fn auth_key(key: &str) -> String {
    let lower = key.trim().to_ascii_lowercase();
    let without_scheme = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host = without_scheme.split('/').next().unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB.to_owned(),
        _ => host.to_owned(),
    }
}

fn is_listed(insecure: &[String], host: &str) -> bool {
    insecure.iter().any(|entry| entry.eq_ignore_ascii_case(host))
}

/// `host[:port]` of a URL, with the port only when the URL states one other than the default.
fn url_host(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) scheme: String,
    pub(crate) params: Vec<(String, String)>,
}

impl Challenge {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// Parses a `WWW-Authenticate` header value (RFC 9110) into its challenges.
/// Parameters are `name=token` or `name="quoted string"`. A token68 credential and anything
/// malformed end the current challenge's parameters, so a bad header yields fewer challenges
/// rather than an error.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut challenges = Vec::new();
    let mut rest = header.trim_start();

    while !rest.is_empty() {
        let (scheme, after_scheme) = take_token(rest);
        if scheme.is_empty() {
            break;
        }
        let mut challenge = Challenge { scheme: scheme.to_owned(), params: Vec::new() };
        rest = after_scheme.trim_start();

        // Parameters, separated by commas, until a token that is not followed by '=' starts the
        // next challenge.
        loop {
            rest = rest.trim_start_matches([',', ' ', '\t']);
            let (name, after_name) = take_token(rest);
            let after_name = after_name.trim_start();
            if name.is_empty() || !after_name.starts_with('=') {
                break;
            }
            let value_start = after_name[1..].trim_start();
            let Some((value, after_value)) = take_value(value_start) else {
                challenges.push(challenge);
                return challenges;
            };
            challenge.params.push((name.to_ascii_lowercase(), value));
            rest = after_value;
        }
        challenges.push(challenge);
    }
    challenges
}

/// Splits off a leading RFC 9110 token.
fn take_token(text: &str) -> (&str, &str) {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let end = text.find(|c: char| !is_tchar(c)).unwrap_or(text.len());
    text.split_at(end)
}

/// Splits off a parameter value: a quoted string with `\` escapes, or a token.
fn take_value(text: &str) -> Option<(String, &str)> {
    let Some(quoted) = text.strip_prefix('"') else {
        let (token, rest) = take_token(text);
        return (!token.is_empty()).then(|| (token.to_owned(), rest));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Some((value, &quoted[index + 1..])),
            '\\' => value.push(chars.next()?.1),
            _ => value.push(c),
        }
    }
    None
}

/// Builds the redirect policy: at most [`MAX_REDIRECTS`] redirects, and none to plain HTTP
/// unless the target host is listed as insecure. reqwest 0.12 drops the `Authorization` header
/// on a redirect to another host or port.
fn redirect_policy(insecure: Vec<String>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let host = url_host(attempt.url());
        if attempt.url().scheme() == "http" && !is_listed(&insecure, &host) {
            let rejected = PlainHttpRedirect { host, url: attempt.url().to_string() };
            return attempt.error(rejected);
        }
        attempt.follow()
    })
}

/// A redirect to plain HTTP that the policy rejected, found again in the error chain.
#[derive(Debug)]
struct PlainHttpRedirect {
    host: String,
    url: String,
}

impl fmt::Display for PlainHttpRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rejected a redirect to plain HTTP URL {}", self.url)
    }
}

impl std::error::Error for PlainHttpRedirect {}

/// A TLS-level reason for a failed request.
pub(crate) enum TlsFailure {
    /// A redirect to plain HTTP was rejected.
    Redirect { host: String, url: String },
    /// The first bytes back were not a TLS record, as when a plain HTTP server replies to the
    /// TLS handshake.
    PlainHttp,
    /// The server's certificate did not verify.
    UntrustedCertificate,
}

/// Finds the TLS-level reason in a failed request's error chain, if there is one.
pub(crate) fn tls_failure(source: &reqwest::Error) -> Option<TlsFailure> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(source);
    while let Some(error) = next {
        if let Some(redirect) = error.downcast_ref::<PlainHttpRedirect>() {
            return Some(TlsFailure::Redirect { host: redirect.host.clone(), url: redirect.url.clone() });
        }
        match error.downcast_ref::<rustls::Error>() {
            Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => return Some(TlsFailure::PlainHttp),
            Some(rustls::Error::InvalidCertificate(_)) => return Some(TlsFailure::UntrustedCertificate),
            _ => {}
        }
        // With reqwest 0.12 the rustls error arrives wrapped in two io::Errors, and
        // io::Error::source() skips the error it wraps, so get_ref() is used instead.
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

/// Classifies a failed request: a rejected redirect, a server that replied to HTTPS with plain
/// HTTP, an untrusted certificate, or any other failure to reach `url`.
fn send_error(url: &str, host: &str, source: reqwest::Error) -> RegistryError {
    match tls_failure(&source) {
        Some(TlsFailure::Redirect { host, url }) => RegistryError::PlainHttpRefused { host, url },
        Some(TlsFailure::PlainHttp) => RegistryError::PlainHttpRefused { host: host.to_owned(), url: url.to_owned() },
        Some(TlsFailure::UntrustedCertificate) => RegistryError::UntrustedCertificate { host: host.to_owned(), source },
        None => RegistryError::Unreachable { url: url.to_owned(), source },
    }
}

fn header_text(response: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

async fn read_capped(url: &str, mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::TooLarge { url: url.to_owned(), limit };
    if response.content_length().is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|source| RegistryError::Unreachable { url: url.to_owned(), source })?
    {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Builds a `Status` error from a registry error response (`{"errors":[{"code","message"}]}`).
async fn status_error(url: &str, response: reqwest::Response) -> RegistryError {
    let status = response.status().as_u16();
    let body = read_capped(url, response, MAX_SMALL_BODY_BYTES).await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let error = &json["errors"][0];
    let truncated = |text: &str| text.chars().take(MAX_MESSAGE_CHARS).collect::<String>();
    let message = truncated(error["message"].as_str().unwrap_or("no error message"));
    let code = truncated(error["code"].as_str().unwrap_or_default());
    RegistryError::Status { url: url.to_owned(), status, code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gun(name: &str) -> Gun {
        Gun::parse(name).unwrap()
    }

    #[test]
    fn endpoint_maps_docker_hub() {
        assert_eq!(endpoint(&gun("docker.io/library/nginx")), ("registry-1.docker.io".to_owned(), "library/nginx".to_owned()));
        assert_eq!(endpoint(&gun("docker.io/team/app")), ("registry-1.docker.io".to_owned(), "team/app".to_owned()));
        assert_eq!(endpoint(&gun("index.docker.io/team/app")), ("registry-1.docker.io".to_owned(), "team/app".to_owned()));
        assert_eq!(endpoint(&gun("nginx")), ("registry-1.docker.io".to_owned(), "library/nginx".to_owned()));
        assert_eq!(endpoint(&gun("team/app")), ("registry-1.docker.io".to_owned(), "team/app".to_owned()));
    }

    #[test]
    fn endpoint_keeps_other_registries() {
        assert_eq!(endpoint(&gun("127.0.0.1:5000/team/app")), ("127.0.0.1:5000".to_owned(), "team/app".to_owned()));
        assert_eq!(endpoint(&gun("localhost/app")), ("localhost".to_owned(), "app".to_owned()));
        assert_eq!(
            endpoint(&gun("registry.example.com/a/b/c")),
            ("registry.example.com".to_owned(), "a/b/c".to_owned())
        );
    }

    fn parse_config(text: &str) -> Result<DockerAuths, RegistryError> {
        DockerAuths::parse(Path::new("/config.json"), text.as_bytes())
    }

    fn encoded(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn docker_config_key_forms_match() {
        let text = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{hub}"}},
                "registry.example.com:5000": {{"username": "alice", "password": "pw1"}},
                "http://plain.example.com": {{"auth": "{plain}"}},
                "https://Secure.Example.com/v2/": {{"auth": "{secure}"}},
                "helper.example.com": {{}}
            }}}}"#,
            hub = encoded("hubuser:hub:pass"),
            plain = encoded("bob:pw2"),
            secure = encoded("carol:pw3"),
        );
        let auths = parse_config(&text).unwrap();

        let hub = auths.find("registry-1.docker.io").unwrap();
        assert_eq!(hub.username, "hubuser");
        assert_eq!(hub.password.as_str(), "hub:pass");
        assert_eq!(auths.find("registry.example.com:5000").unwrap().username, "alice");
        assert!(auths.find("registry.example.com").is_none());
        assert_eq!(auths.find("plain.example.com").unwrap().username, "bob");
        assert_eq!(auths.find("secure.example.com").unwrap().username, "carol");
        assert!(auths.find("helper.example.com").is_none());
        assert!(!auths.uses_helpers);
    }

    #[test]
    fn docker_config_exact_key_wins() {
        let text = format!(
            r#"{{"auths": {{"https://r.example.com": {{"auth": "{url}"}}, "r.example.com": {{"auth": "{exact}"}}}}}}"#,
            url = encoded("url:a"),
            exact = encoded("exact:b"),
        );
        assert_eq!(parse_config(&text).unwrap().find("r.example.com").unwrap().username, "exact");
    }

    #[test]
    fn docker_config_notes_credential_helpers() {
        assert!(parse_config(r#"{"credsStore": "desktop"}"#).unwrap().uses_helpers);
        assert!(parse_config(r#"{"credHelpers": {"r.example.com": "ecr-login"}}"#).unwrap().uses_helpers);
        assert!(!parse_config(r#"{"credsStore": ""}"#).unwrap().uses_helpers);
    }

    #[test]
    fn docker_config_errors_hide_secrets() {
        let cases = [
            r#"{"auths": {"r.example.com": {"auth": "s3cr3t-not-base64!"}}}"#.to_owned(),
            format!(r#"{{"auths": {{"r.example.com": {{"auth": "{}"}}}}}}"#, encoded("s3cr3t-without-colon")),
            r#"{"auths": "s3cr3t"}"#.to_owned(),
            r#"{"auths": {"r.example.com": {"password": 53 }}}"#.to_owned(),
            r#"{"auths": {"r.example.com": {"auth": "s3cr3t""#.to_owned(),
        ];
        for text in cases {
            let error = parse_config(&text).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("/config.json"), "{message}");
            assert!(!message.contains("s3cr3t"), "{message}");
            assert!(!message.contains("53"), "{message}");
        }
    }

    #[test]
    fn credentials_debug_redacts_password() {
        let text = r#"{"auths": {"r.example.com": {"username": "alice", "password": "s3cr3t"}}}"#;
        let auths = parse_config(text).unwrap();
        let debug = format!("{auths:?}");
        assert!(debug.contains("alice"), "{debug}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }

    #[test]
    fn bearer_challenge_parses() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#;
        let challenges = parse_challenges(header);
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].scheme, "Bearer");
        assert_eq!(challenges[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(challenges[0].param("service"), Some("registry.docker.io"));
        assert_eq!(challenges[0].param("scope"), Some("repository:library/nginx:pull"));
    }

    #[test]
    fn challenge_parsing_handles_tokens_escapes_and_lists() {
        let challenges = parse_challenges(r#"Basic realm="a \"quoted\" realm", Bearer realm=https, error = invalid_token"#);
        assert_eq!(challenges.len(), 2);
        assert_eq!(challenges[0].scheme, "Basic");
        assert_eq!(challenges[0].param("realm"), Some(r#"a "quoted" realm"#));
        assert_eq!(challenges[1].scheme, "Bearer");
        assert_eq!(challenges[1].param("realm"), Some("https"));
        assert_eq!(challenges[1].param("error"), Some("invalid_token"));
    }

    #[test]
    fn challenge_parsing_survives_malformed_headers() {
        assert!(parse_challenges("").is_empty());
        assert_eq!(parse_challenges(r#"Bearer realm="unterminated"#)[0].params, Vec::new());
        assert_eq!(parse_challenges("Negotiate abc==")[0].scheme, "Negotiate");
        assert_eq!(parse_challenges("  ,,, ").len(), 0);
    }

    const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

    fn manifest(media_type: Option<&str>) -> Vec<u8> {
        let mut json = serde_json::json!({"schemaVersion": 2});
        if let Some(media_type) = media_type {
            json["mediaType"] = media_type.into();
        }
        serde_json::to_vec(&json).unwrap()
    }

    fn sha256(body: &[u8]) -> String {
        format!("sha256:{}", hex::encode(ring::digest::digest(&ring::digest::SHA256, body)))
    }

    #[test]
    fn manifest_info_checks_header_digest() {
        let body = manifest(Some(OCI));
        let info = manifest_info("r/a:1", Some(OCI), Some(&sha256(&body)), &body).unwrap();
        assert_eq!(info.digest.to_string(), sha256(&body));
        assert_eq!(info.size, body.len() as u64);

        let other = sha256(b"other");
        let error = manifest_info("r/a:1", Some(OCI), Some(&other), &body).unwrap_err();
        assert!(matches!(error, RegistryError::InvalidManifest { .. }), "{error}");
    }

    #[test]
    fn manifest_info_media_type_sources() {
        let body = manifest(Some(OCI));
        let from_header = manifest_info("r/a:1", Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"), None, &body);
        assert_eq!(from_header.unwrap().media_type, OCI);
        assert_eq!(manifest_info("r/a:1", Some("application/json"), None, &body).unwrap().media_type, OCI);
        assert_eq!(manifest_info("r/a:1", None, None, &body).unwrap().media_type, OCI);

        let untyped = manifest(None);
        assert_eq!(manifest_info("r/a:1", Some(OCI), None, &untyped).unwrap().media_type, OCI);
        assert!(manifest_info("r/a:1", Some("application/json"), None, &untyped).is_err());
    }

    #[test]
    fn manifest_info_rejects_other_media_types() {
        let v1 = "application/vnd.docker.distribution.manifest.v1+prettyjws";
        let error = manifest_info("r/a:1", Some(v1), None, &manifest(None)).unwrap_err();
        assert!(matches!(error, RegistryError::UnsupportedMediaType { .. }), "{error}");
        assert!(error.to_string().contains(v1), "{error}");

        let mismatch = manifest_info("r/a:1", Some(MANIFEST_MEDIA_TYPES[1]), None, &manifest(Some(OCI))).unwrap_err();
        assert!(matches!(mismatch, RegistryError::InvalidManifest { .. }), "{mismatch}");
        assert!(manifest_info("r/a:1", Some(OCI), None, b"not json").is_err());
    }

    #[test]
    fn tags_are_checked() {
        assert!(check_tag("v1.2_3-rc").is_ok());
        for bad in ["", "-x", ".x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_config_found_like_the_docker_cli() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let custom = dir.path().join("custom");
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::create_dir_all(&custom).unwrap();
        let env_with = |docker_config: Option<&Path>| {
            let home = home.clone();
            let docker_config = docker_config.map(Path::to_path_buf);
            move |name: &str| match name {
                "HOME" => Some(home.clone().into_os_string()),
                "DOCKER_CONFIG" => docker_config.clone().map(PathBuf::into_os_string),
                _ => None,
            }
        };

        // Nothing exists yet.
        assert_eq!(default_docker_config(&env_with(None)), None);
        std::fs::write(home.join(".docker/config.json"), "{}").unwrap();
        assert_eq!(default_docker_config(&env_with(None)), Some(home.join(".docker/config.json")));
        // DOCKER_CONFIG names a directory and takes precedence, even when its file is missing.
        assert_eq!(default_docker_config(&env_with(Some(&custom))), None);
        std::fs::write(custom.join("config.json"), "{}").unwrap();
        assert_eq!(default_docker_config(&env_with(Some(&custom))), Some(custom.join("config.json")));
    }
}
