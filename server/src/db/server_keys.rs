//! `server_keys`: the timestamp and snapshot keys the server keeps per repository.

use sqlx::{PgConnection, Row};

/// One stored key; the private part stays encrypted until it signs.
#[derive(Debug, Clone)]
pub struct ServerKeyRow {
    pub role: String,
    pub key_id: String,
    pub algorithm: String,
    pub public_key: String,
    pub encrypted_private: Vec<u8>,
    pub nonce: Vec<u8>,
    pub state: String,
}

/// Lists every server key of a repository.
pub async fn list(conn: &mut PgConnection, gun: &str) -> Result<Vec<ServerKeyRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT role, key_id, algorithm, public_key, encrypted_private, nonce, state FROM server_keys WHERE gun = $1 ORDER BY id",
    )
    .bind(gun)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(ServerKeyRow {
                role: row.try_get("role")?,
                key_id: row.try_get("key_id")?,
                algorithm: row.try_get("algorithm")?,
                public_key: row.try_get("public_key")?,
                encrypted_private: row.try_get("encrypted_private")?,
                nonce: row.try_get("nonce")?,
                state: row.try_get("state")?,
            })
        })
        .collect()
}

/// Inserts a pending key unless the repository already has one for the role; returns whether
/// this row was inserted.
pub async fn insert_pending(conn: &mut PgConnection, gun: &str, row: &ServerKeyRow) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO server_keys (gun, role, key_id, algorithm, public_key, encrypted_private, nonce, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending') ON CONFLICT DO NOTHING",
    )
    .bind(gun)
    .bind(&row.role)
    .bind(&row.key_id)
    .bind(&row.algorithm)
    .bind(&row.public_key)
    .bind(&row.encrypted_private)
    .bind(&row.nonce)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// After a root is accepted: keys it lists for `role` become active, and active keys it no
/// longer lists are deleted with their private part. Pending keys root does not list stay.
pub async fn apply_root(conn: &mut PgConnection, gun: &str, role: &str, listed: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE server_keys SET state = 'active' WHERE gun = $1 AND role = $2 AND key_id = ANY($3)")
        .bind(gun)
        .bind(role)
        .bind(listed)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM server_keys WHERE gun = $1 AND role = $2 AND state = 'active' AND NOT (key_id = ANY($3))")
        .bind(gun)
        .bind(role)
        .bind(listed)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes every key of a repository, private parts included.
pub async fn delete_repository(conn: &mut PgConnection, gun: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM server_keys WHERE gun = $1").bind(gun).execute(conn).await?.rows_affected())
}
