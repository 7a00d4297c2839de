//! `auth_keys` and `auth_tokens`: the built-in token issuer's signing keys and issued tokens.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

/// A sealed signing key of the built-in issuer.
pub struct AuthKeyRow {
    pub key_id: String,
    pub public_key: Vec<u8>,
    pub encrypted_private: Vec<u8>,
    pub nonce: Vec<u8>,
}

/// One issued token, without the token text.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRow {
    pub id: String,
    pub subject: String,
    pub access: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Returns every signing key, oldest first.
pub async fn keys(pool: &PgPool) -> Result<Vec<AuthKeyRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT key_id, public_key, encrypted_private, nonce FROM auth_keys ORDER BY created_at, key_id")
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(AuthKeyRow {
                key_id: row.try_get("key_id")?,
                public_key: row.try_get("public_key")?,
                encrypted_private: row.try_get("encrypted_private")?,
                nonce: row.try_get("nonce")?,
            })
        })
        .collect()
}

/// Stores a new signing key. Returns false when a key with this id exists.
pub async fn insert_key(pool: &PgPool, row: &AuthKeyRow) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO auth_keys (key_id, public_key, encrypted_private, nonce) VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING",
    )
    .bind(&row.key_id)
    .bind(&row.public_key)
    .bind(&row.encrypted_private)
    .bind(&row.nonce)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn insert_token(pool: &PgPool, id: &str, subject: &str, access: &str, key_id: &str, expires_at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO auth_tokens (id, subject, access, key_id, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(subject)
        .bind(access)
        .bind(key_id)
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok(())
}

/// True when the token was issued here and is not revoked.
pub async fn is_active(pool: &PgPool, id: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT revoked_at IS NULL AS active FROM auth_tokens WHERE id = $1").bind(id).fetch_optional(pool).await?;
    match row {
        Some(row) => row.try_get("active"),
        None => Ok(false),
    }
}

pub async fn list_tokens(pool: &PgPool) -> Result<Vec<TokenRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, subject, access, created_at, expires_at, revoked_at FROM auth_tokens ORDER BY created_at, id")
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(TokenRow {
                id: row.try_get("id")?,
                subject: row.try_get("subject")?,
                access: row.try_get("access")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Marks a token revoked. Returns false when no token has this id.
pub async fn revoke(pool: &PgPool, id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE auth_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1").bind(id).execute(pool).await?;
    Ok(result.rows_affected() == 1)
}
