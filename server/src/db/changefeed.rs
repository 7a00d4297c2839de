//! `changefeed`: one row per published timestamp and per repository deletion.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};

/// One changefeed record as the API returns it.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub gun: String,
    pub version: i64,
    pub sha256: Option<String>,
    pub category: String,
    /// Subject of the token that made the change, `signet-server` for background re-signing.
    pub actor: Option<String>,
}

pub async fn record_update(conn: &mut PgConnection, gun: &str, version: u64, sha256: &str, actor: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO changefeed (gun, version, sha256, category, actor) VALUES ($1, $2, $3, 'update', $4)")
        .bind(gun)
        .bind(version as i64)
        .bind(sha256)
        .bind(actor)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn record_deletion(conn: &mut PgConnection, gun: &str, actor: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO changefeed (gun, version, sha256, category, actor) VALUES ($1, 0, NULL, 'deletion', $2)")
        .bind(gun)
        .bind(actor)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records with id greater than `after`, oldest first, at most `limit`; for one repository or all.
pub async fn list(pool: &PgPool, gun: Option<&str>, after: i64, limit: i64) -> Result<Vec<Change>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, created_at, gun, version, sha256, category, actor FROM changefeed \
         WHERE id > $1 AND ($2::text IS NULL OR gun = $2) ORDER BY id LIMIT $3",
    )
    .bind(after)
    .bind(gun)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Change {
                id: row.try_get("id")?,
                created_at: row.try_get("created_at")?,
                gun: row.try_get("gun")?,
                version: row.try_get("version")?,
                sha256: row.try_get("sha256")?,
                category: row.try_get("category")?,
                actor: row.try_get("actor")?,
            })
        })
        .collect()
}
