//! A bearer token service on 127.0.0.1 for tests, in the Docker registry token protocol:
//! `GET /token?service=S&scope=repository:NAME:ACTIONS` with Basic credentials returns
//! `{"token": ...}`. Tokens are minted by a closure the test supplies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Mints a token for the requested scope, or None to refuse it.
pub type Mint = dyn Fn(&str) -> Option<String> + Send + Sync;

/// A running token service. Stopped when dropped.
pub struct TokenService {
    port: u16,
    https: bool,
    /// Scopes requested so far, in order.
    scopes: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TokenService {
    /// Starts the service over plain HTTP; it accepts only `user` and `password` as Basic
    /// credentials.
    pub async fn start(user: &str, password: &str, mint: Arc<Mint>) -> anyhow::Result<TokenService> {
        TokenService::start_with(user, password, mint, None).await
    }

    /// Starts the service over HTTPS with a PEM certificate (for 127.0.0.1) and key.
    pub async fn start_https(user: &str, password: &str, mint: Arc<Mint>, certificate: &std::path::Path, key: &std::path::Path) -> anyhow::Result<TokenService> {
        use rustls::pki_types::pem::PemObject;
        let chain = rustls::pki_types::CertificateDer::pem_file_iter(certificate)?.collect::<Result<Vec<_>, _>>()?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key)?;
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        TokenService::start_with(user, password, mint, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(user: &str, password: &str, mint: Arc<Mint>, tls: Option<tokio_rustls::TlsAcceptor>) -> anyhow::Result<TokenService> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let task_scopes = scopes.clone();
        let https = tls.is_some();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let result = match &tls {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(stream) => answer(stream, &expected, mint.as_ref(), &task_scopes).await,
                        Err(error) => Err(error.into()),
                    },
                    None => answer(stream, &expected, mint.as_ref(), &task_scopes).await,
                };
                if let Err(error) = result {
                    eprintln!("test token service: {error:#}");
                }
            }
        });
        Ok(TokenService { port, https, scopes, task })
    }

    /// Returns the realm URL to configure on the server.
    pub fn realm(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/token", self.port)
    }

    pub fn scopes(&self) -> Vec<String> {
        self.scopes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the head of one HTTP request and returns its target and `Authorization` header.
pub async fn read_request_head<S: AsyncRead + Unpin>(stream: &mut S) -> anyhow::Result<(String, Option<String>)> {
    const MAX_REQUEST_BYTES: usize = 16 * 1024;
    let mut buffer = Vec::new();
    let read_head = async {
        while !buffer.windows(4).any(|window| window == b"\r\n\r\n") && buffer.len() < MAX_REQUEST_BYTES {
            let mut chunk = [0u8; 4096];
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                break;
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
        Ok::<(), std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(5), read_head).await.context("timed out reading a token request")??;

    let head = String::from_utf8_lossy(&buffer);
    let mut lines = head.split("\r\n");
    let target = lines.next().and_then(|line| line.split_whitespace().nth(1)).unwrap_or("/").to_owned();
    let authorization = lines.take_while(|line| !line.is_empty()).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("authorization").then(|| value.trim().to_owned())
    });
    Ok((target, authorization))
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, expected: &str, mint: &Mint, scopes: &Mutex<Vec<String>>) -> anyhow::Result<()> {
    let (target, authorization) = read_request_head(&mut stream).await?;
    let url = reqwest::Url::parse(&format!("http://token.invalid{target}"))?;
    let scope = url.query_pairs().find(|(key, _)| key == "scope").map(|(_, value)| value.into_owned()).unwrap_or_default();
    scopes.lock().unwrap_or_else(|p| p.into_inner()).push(scope.clone());

    let token = if authorization.as_deref() == Some(expected) { mint(&scope) } else { None };
    let (status, body) = match token {
        Some(token) => ("200 OK", json!({"token": token}).to_string()),
        None => ("401 Unauthorized", json!({"details": "invalid user name or password"}).to_string()),
    };
    let response = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}
