//! Database access: one module per table. Queries use sqlx's runtime-checked functions, so the
//! server builds without a database.

pub mod auth;
pub mod changefeed;
pub mod server_keys;
pub mod tuf_files;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// Migrations embedded from the workspace's `migrations/` directory.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens a pool lazily, so the server starts, and returns 503, even while the database is down.
pub fn connect_lazy(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options))
}
