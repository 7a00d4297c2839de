//! `tuf_files`: every version of every role of every repository, as exact bytes.

use chrono::{DateTime, Utc};
use signet_core::Document;
use sqlx::{PgConnection, PgPool, Row};

/// One stored metadata file.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub version: i64,
    pub sha256: String,
    pub data: Vec<u8>,
}

fn stored_file(row: sqlx::postgres::PgRow) -> Result<StoredFile, sqlx::Error> {
    Ok(StoredFile { version: row.try_get("version")?, sha256: row.try_get("sha256")?, data: row.try_get("data")? })
}

/// The newest version of one role.
pub async fn current(pool: &PgPool, gun: &str, role: &str) -> Result<Option<StoredFile>, sqlx::Error> {
    sqlx::query("SELECT version, sha256, data FROM tuf_files WHERE gun = $1 AND role = $2 ORDER BY version DESC LIMIT 1")
        .bind(gun)
        .bind(role)
        .fetch_optional(pool)
        .await?
        .map(stored_file)
        .transpose()
}

pub async fn by_version(pool: &PgPool, gun: &str, role: &str, version: i64) -> Result<Option<StoredFile>, sqlx::Error> {
    sqlx::query("SELECT version, sha256, data FROM tuf_files WHERE gun = $1 AND role = $2 AND version = $3")
        .bind(gun)
        .bind(role)
        .bind(version)
        .fetch_optional(pool)
        .await?
        .map(stored_file)
        .transpose()
}

pub async fn by_hash(pool: &PgPool, gun: &str, role: &str, sha256: &str) -> Result<Option<StoredFile>, sqlx::Error> {
    sqlx::query("SELECT version, sha256, data FROM tuf_files WHERE gun = $1 AND sha256 = $2 AND role = $3 ORDER BY version DESC LIMIT 1")
        .bind(gun)
        .bind(sha256)
        .bind(role)
        .fetch_optional(pool)
        .await?
        .map(stored_file)
        .transpose()
}

/// The newest version of every role of a repository, as (role, bytes).
pub async fn current_all(conn: &mut PgConnection, gun: &str) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
    let rows = sqlx::query("SELECT DISTINCT ON (role) role, data FROM tuf_files WHERE gun = $1 ORDER BY role, version DESC")
        .bind(gun)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(|row| Ok((row.try_get("role")?, row.try_get("data")?))).collect()
}

/// Stores a new version and marks older versions of the role as superseded.
pub async fn insert(conn: &mut PgConnection, gun: &str, role: &str, document: &Document) -> Result<(), sqlx::Error> {
    let version = i64::try_from(document.version).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO tuf_files (gun, role, version, sha256, length, data, expires) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(gun)
    .bind(role)
    .bind(version)
    .bind(&document.sha256)
    .bind(document.bytes.len() as i64)
    .bind(&document.bytes)
    .bind(document.expires)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE tuf_files SET superseded_at = now() WHERE gun = $1 AND role = $2 AND version < $3 AND superseded_at IS NULL")
        .bind(gun)
        .bind(role)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes every stored version of a repository; returns the number of rows removed.
pub async fn delete_repository(conn: &mut PgConnection, gun: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM tuf_files WHERE gun = $1").bind(gun).execute(conn).await?.rows_affected())
}

/// Repositories whose current timestamp or snapshot expires before `deadline`.
pub async fn due_for_resigning(
    pool: &PgPool,
    timestamp_deadline: DateTime<Utc>,
    snapshot_deadline: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT DISTINCT gun FROM tuf_files WHERE superseded_at IS NULL \
         AND ((role = 'timestamp' AND expires < $1) OR (role = 'snapshot' AND expires < $2)) LIMIT 1000",
    )
    .bind(timestamp_deadline)
    .bind(snapshot_deadline)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|row| row.try_get("gun")).collect()
}

/// Deletes timestamp and snapshot versions superseded before `cutoff`. Root and targets
/// versions, and every current version, are never pruned.
pub async fn prune(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "DELETE FROM tuf_files WHERE role IN ('timestamp', 'snapshot') AND superseded_at IS NOT NULL AND superseded_at < $1",
    )
    .bind(cutoff)
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

/// Expiry of the current version of every role of every repository, as (gun, role, expires),
/// at most `limit` rows.
pub async fn current_expiries(pool: &PgPool, limit: i64) -> Result<Vec<(String, String, DateTime<Utc>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT gun, role, expires FROM (SELECT DISTINCT ON (gun, role) gun, role, expires FROM tuf_files \
         ORDER BY gun, role, version DESC) current ORDER BY expires LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|row| Ok((row.try_get("gun")?, row.try_get("role")?, row.try_get("expires")?))).collect()
}
