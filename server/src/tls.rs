//! HTTPS: a rustls listener for axum whose certificate can be reloaded from its files while the
//! server runs (on SIGHUP), so certificates are renewed without a restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Time a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the HTTP server to take them.
const ACCEPTED_QUEUE: usize = 256;

/// The certificate chain and private key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Serves the certificate loaded last; [`ReloadableCertificate::reload`] swaps it.
#[derive(Debug)]
pub struct ReloadableCertificate {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCertificate {
    pub fn load(files: TlsFiles) -> anyhow::Result<ReloadableCertificate> {
        let key = load_certified_key(&files)?;
        Ok(ReloadableCertificate { files, current: RwLock::new(Arc::new(key)) })
    }

    /// Reads the files again. On any error the current certificate stays in use.
    pub fn reload(&self) -> anyhow::Result<()> {
        let key = load_certified_key(&self.files)?;
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Arc::new(key);
        Ok(())
    }
}

impl ResolvesServerCert for ReloadableCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone())
    }
}

fn load_certified_key(files: &TlsFiles) -> anyhow::Result<CertifiedKey> {
    let chain = read_certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|error| anyhow::anyhow!("failed to read a PEM private key from {}: {error}", files.key.display()))?;
    let provider = ring_provider();
    CertifiedKey::from_der(chain, key, &provider).with_context(|| {
        format!("the private key in {} does not fit the certificate in {}, or has an unsupported type", files.key.display(), files.cert.display())
    })
}

fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| anyhow::anyhow!("failed to read PEM certificates from {}: {error}", path.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no PEM certificate found in {}", path.display());
    Ok(chain)
}

/// Returns the rustls provider backed by ring, the crypto library the rest of the workspace
/// uses. rustls 0.23.48 marks it deprecated because ring offers no post-quantum key exchange.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Builds the rustls configuration around a reloadable certificate.
pub fn server_config(certificate: Arc<ReloadableCertificate>) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(ring_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    // The HTTP server here speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A listener that hands axum connections after their TLS handshake. Handshakes run in their
/// own tasks, so a slow client does not hold up the others.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: rustls::ServerConfig) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (sender, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        tokio::spawn(accept_loop(listener, acceptor, sender));
        Ok(TlsListener { accepted, local })
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, sender: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Typically too many open files; retrying at once would spin.
                tracing::warn!(%error, "failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if sender.is_closed() {
            return;
        }
        let acceptor = acceptor.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = sender.send((tls, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(connection) => connection,
            // The accept loop ended, which it does only when this listener is gone; wait for
            // the shutdown signal instead of returning a connection.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Reloads the certificate on every SIGHUP until the process ends.
pub fn reload_on_sighup(certificate: Arc<ReloadableCertificate>) -> anyhow::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("failed to listen for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match certificate.reload() {
                Ok(()) => tracing::info!(cert = %certificate.files.cert.display(), "reloaded the TLS certificate"),
                Err(error) => tracing::error!("failed to reload the TLS certificate, keeping the current one: {error:#}"),
            }
        }
    });
    Ok(())
}
