//! Throwaway OCI distribution registries for tests. Each runs Debian's `docker-registry`
//! (distribution 2.8) on 127.0.0.1, optionally with htpasswd or bearer token authentication and
//! with TLS from a throwaway CA. Helpers push small real OCI images over the registry HTTP API.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context};
use base64::Engine as _;
use serde_json::json;
use signet_client::reference::Digest;
use tokio::io::AsyncWriteExt as _;

/// The registry binary from Debian's `docker-registry` package.
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Issuer and service names shared by the token service and the registry's token settings.
const TOKEN_ISSUER: &str = "signet-test-token-issuer";
pub const TOKEN_SERVICE: &str = "signet-test-registry";

/// Time allowed for the registry to respond to `GET /v2/` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Number of ports tried when the registry fails to bind, because another process can take the
/// free port between the check and the registry's bind.
const START_ATTEMPTS: usize = 3;

/// Platforms written into pushed indexes, assigned to the entries in order.
const INDEX_PLATFORMS: [(&str, Option<&str>); 6] =
    [("amd64", None), ("arm64", Some("v8")), ("arm", Some("v7")), ("ppc64le", None), ("s390x", None), ("386", None)];

/// How to configure a test registry.
#[derive(Clone, Default)]
pub struct RegistryConfig {
    /// User name and password accepted through htpasswd Basic authentication; None leaves the
    /// registry open. With `token_auth`, the token service checks them instead.
    pub htpasswd: Option<(String, String)>,
    /// Serve HTTPS with a certificate for 127.0.0.1 from a throwaway CA.
    pub tls: bool,
    /// Use the registry's token authentication, with a token service on 127.0.0.1 in this
    /// process that issues pull tokens signed with a throwaway ES256 key.
    pub token_auth: bool,
}

/// One request that reached the test token service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub scope: Option<String>,
    pub service: Option<String>,
    pub had_authorization: bool,
}

/// A manifest pushed to a test registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// A running `docker-registry` process with its storage in a temporary directory. Killed when
/// dropped.
pub struct RegistryProcess {
    child: Child,
    port: u16,
    tls: bool,
    ca_file: Option<PathBuf>,
    credentials: Option<(String, String)>,
    token_service: Option<TokenService>,
    log_file: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl RegistryProcess {
    /// Starts a registry on a free port of 127.0.0.1 and waits until it responds to `GET /v2/`.
    pub async fn start(config: RegistryConfig) -> anyhow::Result<RegistryProcess> {
        let dir = tempfile::Builder::new().prefix("signet-registry-").tempdir()?;
        let log_file = dir.path().join("registry.log");

        let (auth_yaml, token_service) = if config.token_auth {
            let (signer, root_certificate) = write_token_key(dir.path())?;
            let service = TokenService::start(signer, config.htpasswd.clone()).await?;
            let yaml = format!(
                "auth:\n  token:\n    realm: \"http://{}/token\"\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: \"{}\"\n",
                service.host(),
                root_certificate.display()
            );
            (yaml, Some(service))
        } else if let Some((user, password)) = &config.htpasswd {
            let htpasswd = write_htpasswd(dir.path(), user, password)?;
            (format!("auth:\n  htpasswd:\n    realm: signet-test\n    path: \"{}\"\n", htpasswd.display()), None)
        } else {
            (String::new(), None)
        };
        let tls_files = if config.tls { Some(write_tls_files(dir.path())?) } else { None };

        let mut http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(30));
        if let Some(tls) = &tls_files {
            let pem = std::fs::read(&tls.ca).context("read the test CA certificate")?;
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        let http = http.build()?;

        for attempt in 1..=START_ATTEMPTS {
            let port = free_port()?;
            let config_file = dir.path().join("config.yml");
            let yaml = config_yaml(dir.path(), port, tls_files.as_ref()) + &auth_yaml;
            std::fs::write(&config_file, yaml)?;

            let log = File::options().create(true).append(true).open(&log_file)?;
            let mut command = Command::new(REGISTRY_BINARY);
            command.arg("serve").arg(&config_file).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
            // REGISTRY_* variables override the configuration file.
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("REGISTRY_") {
                    command.env_remove(name);
                }
            }
            let mut child = command.spawn().with_context(|| format!("failed to start {REGISTRY_BINARY}"))?;

            let scheme = if config.tls { "https" } else { "http" };
            match wait_ready(&mut child, &http, &format!("{scheme}://127.0.0.1:{port}/v2/")).await {
                Ok(()) => {
                    return Ok(RegistryProcess {
                        child,
                        port,
                        tls: config.tls,
                        ca_file: tls_files.map(|tls| tls.ca),
                        credentials: config.htpasswd,
                        token_service,
                        log_file,
                        http,
                        _dir: dir,
                    });
                }
                // An early exit is most likely a failed bind, so another port may work.
                Err(error) if attempt < START_ATTEMPTS && child.try_wait()?.is_some() => {
                    eprintln!("the test registry on port {port} did not start ({error:#}); trying another port");
                }
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let logs = std::fs::read_to_string(&log_file).unwrap_or_default();
                    return Err(error.context(format!("the test registry did not start; its log:\n{logs}")));
                }
            }
        }
        bail!("the registry did not start")
    }

    /// "127.0.0.1:PORT", the registry part of image names.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// PEM file of the CA that issued the server certificate, when the registry uses TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// `127.0.0.1:PORT` of the token service, when the registry uses token authentication.
    pub fn token_host(&self) -> Option<String> {
        self.token_service.as_ref().map(TokenService::host)
    }

    /// Requests that reached the token service so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        match &self.token_service {
            Some(service) => service.requests.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            None => Vec::new(),
        }
    }

    /// Everything the registry wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Uploads a blob in one monolithic upload and returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> anyhow::Result<Digest> {
        let digest = sha256_digest(bytes);

        let start_url = format!("{}/v2/{repo}/blobs/uploads/", self.base_url());
        let response = self.authorized(self.http.post(&start_url), repo)?.send().await?;
        ensure!(response.status() == reqwest::StatusCode::ACCEPTED, "starting a blob upload returned {}", response.status());
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .context("the blob upload response has no Location header")?
            .to_str()?;
        // The Location header may be absolute or relative to the registry.
        let mut upload_url = reqwest::Url::parse(&start_url)?.join(location)?;
        upload_url.query_pairs_mut().append_pair("digest", &digest.to_string());

        let request = self
            .http
            .put(upload_url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec());
        let response = self.authorized(request, repo)?.send().await?;
        ensure!(response.status() == reqwest::StatusCode::CREATED, "completing the blob upload returned {}", response.status());
        Ok(digest)
    }

    /// Uploads a manifest under `reference` (a tag) and returns its digest, checked against the
    /// registry's `Docker-Content-Digest`.
    pub async fn push_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> anyhow::Result<Digest> {
        let digest = sha256_digest(bytes);
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base_url());
        let request = self.http.put(&url).header(reqwest::header::CONTENT_TYPE, media_type).body(bytes.to_vec());
        let response = self.authorized(request, repo)?.send().await?;
        let status = response.status();
        let header_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        if status != reqwest::StatusCode::CREATED {
            bail!("pushing the manifest to {url} returned {status}: {}", response.text().await.unwrap_or_default());
        }
        ensure!(
            header_digest.as_deref() == Some(digest.to_string().as_str()),
            "the registry stored the manifest as {header_digest:?}, expected {digest}"
        );
        Ok(digest)
    }

    /// Pushes a one-layer OCI image whose layer contains one file with content derived from `seed`,
    /// so different seeds give different manifests.
    pub async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> anyhow::Result<PushedManifest> {
        let tar = tar_with_file("seed.txt", format!("signet test image {seed}\n").as_bytes());
        let layer = gzip(&tar)?;
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&tar).to_string()]},
            "config": {},
        }))?;

        let config_digest = self.push_blob(repo, &config).await?;
        let layer_digest = self.push_blob(repo, &layer).await?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest.to_string(), "size": layer.len()}],
        }))?;
        self.push_and_describe(repo, tag, OCI_MANIFEST, manifest).await
    }

    /// Pushes an OCI image index over `manifests`, which must already be in `repo`. Entries get
    /// the platforms of [`INDEX_PLATFORMS`] in order, regardless of the architecture in their
    /// configs, because the tests compare digests only.
    pub async fn push_index(&self, repo: &str, tag: &str, manifests: &[PushedManifest]) -> anyhow::Result<PushedManifest> {
        ensure!(manifests.len() <= INDEX_PLATFORMS.len(), "push_index supports at most {} manifests", INDEX_PLATFORMS.len());
        let entries: Vec<serde_json::Value> = manifests
            .iter()
            .zip(INDEX_PLATFORMS)
            .map(|(manifest, (architecture, variant))| {
                let mut platform = json!({"architecture": architecture, "os": "linux"});
                if let Some(variant) = variant {
                    platform["variant"] = variant.into();
                }
                json!({
                    "mediaType": manifest.media_type,
                    "digest": manifest.digest.to_string(),
                    "size": manifest.size,
                    "platform": platform,
                })
            })
            .collect();
        let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))?;
        self.push_and_describe(repo, tag, OCI_INDEX, index).await
    }

    async fn push_and_describe(&self, repo: &str, tag: &str, media_type: &str, bytes: Vec<u8>) -> anyhow::Result<PushedManifest> {
        let digest = self.push_manifest(repo, tag, media_type, &bytes).await?;
        Ok(PushedManifest { digest, size: bytes.len() as u64, media_type: media_type.to_owned(), bytes })
    }

    /// Adds the harness's own authorization: a push token minted directly under token
    /// authentication, the htpasswd credentials otherwise.
    fn authorized(&self, request: reqwest::RequestBuilder, repo: &str) -> anyhow::Result<reqwest::RequestBuilder> {
        if let Some(service) = &self.token_service {
            return Ok(request.bearer_auth(service.signer.token("signet-test-harness", repo, &["pull", "push"])?));
        }
        Ok(match &self.credentials {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        })
    }
}

/// A bearer token service on 127.0.0.1, served by a task of the test's tokio runtime. It issues
/// tokens that grant pull only, whatever the scope requests, and checks Basic credentials when
/// it has any.
struct TokenService {
    port: u16,
    signer: Arc<TokenSigner>,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TokenService {
    async fn start(signer: TokenSigner, credentials: Option<(String, String)>) -> anyhow::Result<TokenService> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let signer = Arc::new(signer);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let expected_authorization = credentials.map(|(user, password)| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
        });

        let task_signer = signer.clone();
        let task_requests = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let result = answer_token_request(stream, &task_signer, expected_authorization.as_deref(), &task_requests).await;
                if let Err(error) = result {
                    eprintln!("test token service: {error:#}");
                }
            }
        });
        Ok(TokenService { port, signer, requests, task })
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP request, records it, and replies with a pull token or 401.
async fn answer_token_request(
    mut stream: tokio::net::TcpStream,
    signer: &TokenSigner,
    expected_authorization: Option<&str>,
    requests: &Mutex<Vec<TokenRequest>>,
) -> anyhow::Result<()> {
    let (target, authorization) = crate::tokens::read_request_head(&mut stream).await?;
    let url = reqwest::Url::parse(&format!("http://token.invalid{target}"))?;
    let query = |name: &str| url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned());
    let scope = query("scope");
    requests.lock().unwrap_or_else(|p| p.into_inner()).push(TokenRequest {
        scope: scope.clone(),
        service: query("service"),
        had_authorization: authorization.is_some(),
    });

    let accepted = expected_authorization.is_none_or(|expected| authorization.as_deref() == Some(expected));
    let (status, body) = if accepted {
        // A scope is "repository:NAME:ACTIONS"; this service grants pull only.
        let repository = scope.as_deref().and_then(|scope| scope.strip_prefix("repository:")).and_then(|rest| rest.rsplit_once(':'));
        let token = match repository {
            Some((name, actions)) if actions.split(',').any(|action| action == "pull") => signer.token("signet-user", name, &["pull"])?,
            _ => signer.token("signet-user", "", &[])?,
        };
        ("200 OK", json!({"token": token}).to_string())
    } else {
        ("401 Unauthorized", json!({"details": "invalid user name or password"}).to_string())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

/// Signs JSON web tokens with ES256 in the form `docker-registry` 2.8 accepts: the header names
/// the key by its libtrust key ID, which the registry derives from the public key of each
/// certificate in its `rootcertbundle`.
struct TokenSigner {
    key: ring::signature::EcdsaKeyPair,
    key_id: String,
    random: ring::rand::SystemRandom,
}

impl TokenSigner {
    /// Mints a token for `subject` granting `actions` on repository `name`, valid for 5 minutes.
    fn token(&self, subject: &str, name: &str, actions: &[&str]) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let access = if actions.is_empty() {
            json!([])
        } else {
            json!([{"type": "repository", "name": name, "actions": actions}])
        };
        let header = json!({"typ": "JWT", "alg": "ES256", "kid": self.key_id});
        let claims = json!({
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now - 10,
            "jti": format!("{now}-{}", hex::encode(name)),
            "access": access,
        });
        let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let signed = format!("{}.{}", encode(header.to_string().as_bytes()), encode(claims.to_string().as_bytes()));
        let signature = self.key.sign(&self.random, signed.as_bytes()).map_err(|_| anyhow::anyhow!("ES256 signing failed"))?;
        Ok(format!("{signed}.{}", encode(signature.as_ref())))
    }
}

/// Makes a P-256 token signing key and a self-signed certificate for it with the `openssl`
/// command, and returns the signer and the certificate's path for `rootcertbundle`.
fn write_token_key(dir: &Path) -> anyhow::Result<(TokenSigner, PathBuf)> {
    let key_pem = dir.join("token.key");
    let key_pkcs8 = dir.join("token.pk8");
    let public_key = dir.join("token-pub.der");
    let certificate = dir.join("token.pem");
    let request_config = dir.join("token.cnf");
    std::fs::write(&request_config, "[req]\ndistinguished_name = dn\n[dn]\n")?;

    openssl(Command::new("openssl").args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"]).arg(&key_pem))?;
    openssl(Command::new("openssl").args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"]).arg(&key_pem).arg("-out").arg(&key_pkcs8))?;
    openssl(Command::new("openssl").args(["pkey", "-pubout", "-outform", "DER", "-in"]).arg(&key_pem).arg("-out").arg(&public_key))?;
    openssl(
        Command::new("openssl")
            .args(["req", "-x509", "-new", "-days", "2", "-subj", "/CN=Signet test token issuer", "-config"])
            .arg(&request_config)
            .arg("-key")
            .arg(&key_pem)
            .arg("-out")
            .arg(&certificate),
    )?;

    let random = ring::rand::SystemRandom::new();
    let pkcs8 = std::fs::read(&key_pkcs8)?;
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &random)
        .map_err(|error| anyhow::anyhow!("ring rejected the token signing key: {error}"))?;
    let key_id = libtrust_key_id(&std::fs::read(&public_key)?);
    Ok((TokenSigner { key, key_id, random }, certificate))
}

/// Computes the libtrust key ID of a public key: the first 240 bits of the SHA-256 of its DER
/// SubjectPublicKeyInfo, in base32 (RFC 4648 alphabet), as 12 groups of 4 characters joined by
/// ':'. `docker-registry` 2.8.2 finds the token signing key by this ID.
fn libtrust_key_id(spki_der: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = ring::digest::digest(&ring::digest::SHA256, spki_der);

    // 30 bytes are 240 bits, exactly 48 base32 characters of 5 bits each.
    let mut encoded = String::new();
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for &byte in &hash.as_ref()[..30] {
        bits = (bits << 8) | u32::from(byte);
        bit_count += 8;
        while bit_count >= 5 {
            bit_count -= 5;
            encoded.push(char::from(ALPHABET[((bits >> bit_count) & 31) as usize]));
        }
    }
    let groups: Vec<&str> = (0..12).map(|group| &encoded[group * 4..group * 4 + 4]).collect();
    groups.join(":")
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Writes a Docker config file whose `auths` entry for `key` contains `user:password` in the
/// base64 `auth` form that `docker login` writes, and returns its path.
pub fn write_docker_config(dir: &Path, key: &str, user: &str, password: &str) -> anyhow::Result<PathBuf> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&json!({"auths": {key: {"auth": auth}}}))?)?;
    Ok(path)
}

/// SHA-256 digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    let hash = ring::digest::digest(&ring::digest::SHA256, bytes);
    Digest::from_sha256_hex(&hex::encode(hash.as_ref())).expect("a SHA-256 is 64 hex characters")
}

/// Polls `url` (`GET /v2/`) until any HTTP response arrives. A 401 counts, because it comes from a
/// registry that is serving.
async fn wait_ready(child: &mut Child, http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("the registry exited with {status}");
        }
        if http.get(url).send().await.is_ok() {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("the registry did not respond to {url} within {} s", START_TIMEOUT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Returns a port that was free on 127.0.0.1 a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A throwaway CA certificate, and a server certificate and key it signed.
pub struct TlsFiles {
    pub ca: PathBuf,
    pub certificate: PathBuf,
    pub key: PathBuf,
}

fn config_yaml(dir: &Path, port: u16, tls: Option<&TlsFiles>) -> String {
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: \"{storage}\"\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: signet-test-registry\n",
        storage = dir.join("storage").display(),
    );
    if let Some(tls) = tls {
        yaml.push_str(&format!(
            "  tls:\n    certificate: \"{}\"\n    key: \"{}\"\n",
            tls.certificate.display(),
            tls.key.display()
        ));
    }
    yaml
}

/// Writes an htpasswd file with a bcrypt entry made by `htpasswd -Bbn`.
fn write_htpasswd(dir: &Path, user: &str, password: &str) -> anyhow::Result<PathBuf> {
    let output = Command::new("htpasswd").args(["-Bbn", user, password]).output().context("failed to run htpasswd")?;
    ensure!(output.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&output.stderr));
    let path = dir.join("htpasswd");
    std::fs::write(&path, output.stdout)?;
    Ok(path)
}

/// Makes a throwaway CA and a server certificate for IP 127.0.0.1 with the `openssl` command.
pub fn write_tls_files(dir: &Path) -> anyhow::Result<TlsFiles> {
    let files = TlsFiles { ca: dir.join("ca.pem"), certificate: dir.join("server.pem"), key: dir.join("server.key") };
    let ca_key = dir.join("ca.key");
    let request = dir.join("server.csr");
    let ca_config = dir.join("ca.cnf");
    let server_extensions = dir.join("server-ext.cnf");
    std::fs::write(
        &ca_config,
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = Signet test CA\n\
         [v3_ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n",
    )?;
    std::fs::write(
        &server_extensions,
        "subjectAltName = IP:127.0.0.1\nbasicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
    )?;

    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(Command::new("openssl").args(["req", "-x509", "-days", "2"]).args(ec).arg("-config").arg(&ca_config).args(["-extensions", "v3_ca"]).arg("-keyout").arg(&ca_key).arg("-out").arg(&files.ca))?;
    openssl(Command::new("openssl").args(["req", "-new", "-subj", "/CN=127.0.0.1"]).args(ec).arg("-config").arg(&ca_config).arg("-keyout").arg(&files.key).arg("-out").arg(&request))?;
    openssl(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", "2", "-in"])
            .arg(&request)
            .arg("-CA")
            .arg(&files.ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&server_extensions)
            .arg("-out")
            .arg(&files.certificate),
    )?;
    Ok(files)
}

fn openssl(command: &mut Command) -> anyhow::Result<()> {
    let output = command.stdin(Stdio::null()).output().context("failed to run openssl")?;
    ensure!(output.status.success(), "openssl failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(())
}

/// Builds a ustar archive containing one regular file.
fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    fn put(field: &mut [u8], value: &[u8]) {
        field[..value.len()].copy_from_slice(value);
    }

    let mut header = [0u8; 512];
    put(&mut header[0..100], name.as_bytes());
    put(&mut header[100..108], b"0000644\0");
    put(&mut header[108..116], b"0000000\0");
    put(&mut header[116..124], b"0000000\0");
    put(&mut header[124..136], format!("{:011o}\0", content.len()).as_bytes());
    put(&mut header[136..148], b"00000000000\0");
    header[156] = b'0';
    put(&mut header[257..263], b"ustar\0");
    put(&mut header[263..265], b"00");
    // The checksum is the byte sum of the header with the checksum field read as spaces.
    header[148..156].fill(b' ');
    let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    put(&mut header[148..156], format!("{checksum:06o}\0 ").as_bytes());

    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    // Two zero blocks end the archive.
    tar.resize(tar.len() + 1024, 0);
    tar
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}
