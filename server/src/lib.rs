//! signet-server: stores every version of TUF metadata per repository in PostgreSQL, validates
//! uploads, and signs snapshot and timestamp with server-held keys.

pub mod auth;
pub mod background;
pub mod cache;
pub mod config;
pub mod db;
pub mod embedded;
pub mod error;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod repository;
pub mod state;
pub mod tls;

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::Authenticator;
use crate::config::{AuthMode, Command, Config, DatabaseSource, TokenCommand};
use crate::embedded::EmbeddedPostgres;
use crate::keys::Kek;
use crate::state::AppState;

/// Runs a subcommand to completion.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    if matches!(command, Command::Serve) {
        check_exposure(&config)?;
    }
    // Tokens issued into a new, empty cluster would be accepted by no server.
    if matches!(command, Command::Token(_)) && matches!(config.database, DatabaseSource::Embedded) {
        let exists = config.data_dir.join("postgres").exists() || config.data_dir.join("postgres.location").exists();
        anyhow::ensure!(
            exists,
            "no embedded database in {}; run token commands with the server's --data-dir or --database-url",
            config.data_dir.display()
        );
    }
    let (database_url, embedded) = match &config.database {
        DatabaseSource::Url(url) => (url.clone(), None),
        DatabaseSource::Embedded => {
            let cluster = EmbeddedPostgres::start(&config.data_dir)
                .await
                .context("failed to start the embedded PostgreSQL; pass --database-url to use an existing database")?;
            (cluster.database_url().to_owned(), Some(cluster))
        }
    };

    let result = match command {
        Command::Migrate => migrate(&database_url, &config).await,
        Command::Serve => serve(&database_url, config).await,
        Command::Token(command) => token(&database_url, &config, command).await,
    };

    if let Some(cluster) = embedded {
        if let Err(error) = cluster.stop().await {
            tracing::warn!(error = %error, "failed to stop the embedded PostgreSQL");
        }
    }
    result
}

async fn migrate(database_url: &str, config: &Config) -> anyhow::Result<()> {
    let pool = db::connect_lazy(database_url, 2, config.db_acquire_timeout).context("invalid database URL")?;
    db::MIGRATOR.run(&pool).await.context("failed to apply database migrations")?;
    tracing::info!("database migrations applied");
    pool.close().await;
    Ok(())
}

/// Refuses a listen address other than loopback without TLS or without authentication, unless
/// the matching `--insecure-…` option is given, and logs what is exposed.
fn check_exposure(config: &Config) -> anyhow::Result<()> {
    let loopback = config.listen.ip().is_loopback();
    if config.tls.is_none() && !loopback {
        anyhow::ensure!(
            config.insecure_plain_http,
            "refusing to serve plain HTTP on {}: pass --tls-cert and --tls-key, listen on a loopback address, or pass --insecure-plain-http",
            config.listen
        );
        tracing::warn!(listen = %config.listen, "--insecure-plain-http: serving plain HTTP on a network address; anyone on the path can read tokens and change responses");
    }
    if config.auth.mode == AuthMode::None {
        if loopback {
            tracing::info!(listen = %config.listen, "no authentication (--auth none): accepting anonymous requests, on a loopback address only");
        } else {
            anyhow::ensure!(
                config.auth.insecure_no_auth,
                "refusing to accept anonymous requests on {}: pass --auth builtin or --auth registry-token, listen on a loopback address, or pass --insecure-no-auth",
                config.listen
            );
            tracing::warn!(listen = %config.listen, "--insecure-no-auth: anyone who reaches this server can publish to and delete any repository");
        }
    } else if config.auth.anonymous_read {
        tracing::info!("--anonymous-read: requests without a token may read metadata");
    }
    Ok(())
}

async fn serve(database_url: &str, config: Config) -> anyhow::Result<()> {
    let kek = Kek::load(&config.kek).context("failed to load the key encryption key")?;
    let pool = db::connect_lazy(database_url, config.db_max_connections, config.db_acquire_timeout)
        .context("invalid database URL")?;
    db::MIGRATOR.run(&pool).await.context("failed to apply database migrations; is the database reachable?")?;
    let authenticator = Authenticator::new(&config.auth).context("failed to set up authentication")?;

    let listener = TcpListener::bind(config.listen).await.with_context(|| format!("failed to listen on {}", config.listen))?;
    let address = listener.local_addr().context("listener has no local address")?;
    let tls = match &config.tls {
        Some(files) => {
            let certificate = Arc::new(tls::ReloadableCertificate::load(files.clone()).context("failed to load the TLS certificate")?);
            tls::reload_on_sighup(certificate.clone())?;
            Some(tls::server_config(certificate)?)
        }
        None => None,
    };
    let auth_mode = config.auth.mode;
    let state = AppState::new(pool.clone(), config, kek, authenticator);

    let (shutdown_sender, shutdown_receiver) = watch::channel(false);
    let background = tokio::spawn(background::run(state.clone(), shutdown_receiver));

    let app = http::router(state);
    match tls {
        Some(tls_config) => {
            tracing::info!(listen = %address, tls = true, auth = ?auth_mode, "signet-server started");
            let listener = tls::TlsListener::new(listener, tls_config).context("failed to set up the TLS listener")?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("HTTP server failed")?;
        }
        None => {
            tracing::info!(listen = %address, tls = false, auth = ?auth_mode, "signet-server started");
            axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("HTTP server failed")?;
        }
    }

    let _ = shutdown_sender.send(true);
    let _ = background.await;
    pool.close().await;
    tracing::info!("signet-server stopped");
    Ok(())
}

/// Runs a `token` subcommand against the database the server uses.
async fn token(database_url: &str, config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let pool = db::connect_lazy(database_url, 2, config.db_acquire_timeout).context("invalid database URL")?;
    db::MIGRATOR.run(&pool).await.context("failed to apply database migrations; is the database reachable?")?;
    let result = match command {
        TokenCommand::Issue(args) => {
            let kek = Kek::load(&config.kek).context("failed to load the key encryption key")?;
            let token = auth::issuer::issue(&pool, &kek, &config.auth, &args).await?;
            println!("{token}");
            Ok(())
        }
        TokenCommand::List => {
            for row in auth::issuer::list(&pool).await? {
                let revoked = row.revoked_at.map_or_else(|| "-".to_owned(), |time| time.to_rfc3339());
                println!("{}\t{}\t{}\texpires {}\trevoked {}", row.id, row.subject, row.access, row.expires_at.to_rfc3339(), revoked);
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => auth::issuer::revoke(&pool, &id).await,
    };
    pool.close().await;
    result
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received; finishing open requests");
}
