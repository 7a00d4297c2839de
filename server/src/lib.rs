//! signet-server: stores every version of TUF metadata per repository in PostgreSQL, validates
//! uploads, and signs snapshot and timestamp with server-held keys.

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

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Command, Config, DatabaseSource};
use crate::embedded::EmbeddedPostgres;
use crate::keys::Kek;
use crate::state::AppState;

/// Runs a subcommand to completion.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
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

async fn serve(database_url: &str, config: Config) -> anyhow::Result<()> {
    let kek = Kek::load(&config.kek).context("failed to load the key encryption key")?;
    let pool = db::connect_lazy(database_url, config.db_max_connections, config.db_acquire_timeout)
        .context("invalid database URL")?;
    db::MIGRATOR.run(&pool).await.context("failed to apply database migrations; is the database reachable?")?;

    let listener = TcpListener::bind(config.listen).await.with_context(|| format!("failed to listen on {}", config.listen))?;
    let address = listener.local_addr().context("listener has no local address")?;
    let state = AppState::new(pool.clone(), config, kek);

    let (shutdown_sender, shutdown_receiver) = watch::channel(false);
    let background = tokio::spawn(background::run(state.clone(), shutdown_receiver));

    tracing::info!(listen = %address, "signet-server started");
    let app = http::router(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("HTTP server failed")?;

    let _ = shutdown_sender.send(true);
    let _ = background.await;
    pool.close().await;
    tracing::info!("signet-server stopped");
    Ok(())
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
