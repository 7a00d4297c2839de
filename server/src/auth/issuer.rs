//! The built-in token issuer: `signet-server token issue`, `list` and `revoke`.
//!
//! Its Ed25519 signing key is kept in `auth_keys`, sealed under the key encryption key, and
//! created on the first `token issue`. Each token has a row in `auth_tokens`. The server accepts
//! a built-in token only while that row exists and is not revoked, so revoking takes effect on
//! the next request, also in a server that is already running.

use anyhow::Context;
use chrono::{Duration, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use sqlx::PgPool;

use super::token::{Access, Audience, Claims, TokenSigner, VerifyingKeys};
use crate::config::{AuthConfig, IssueArgs};
use crate::db::auth::{self as auth_db, AuthKeyRow};
use crate::error::ApiError;
use crate::keys::Kek;

/// Associated data that binds a sealed issuer key to its purpose and key id.
fn associated_data(key_id: &str) -> String {
    format!("signet-token-issuer\n{key_id}")
}

/// Public keys of every issuer key, for verifying built-in tokens.
pub async fn verifying_keys(pool: &PgPool) -> Result<VerifyingKeys, ApiError> {
    let mut keys = VerifyingKeys::new();
    for row in auth_db::keys(pool).await? {
        keys.add_ed25519(&row.key_id, &row.public_key)
            .map_err(|error| ApiError::internal(&format!("stored token issuer key {} is invalid", row.key_id), &error))?;
    }
    Ok(keys)
}

/// Returns the newest issuer key, creating one when there is none.
async fn signer(pool: &PgPool, kek: &Kek) -> anyhow::Result<TokenSigner> {
    if let Some(row) = auth_db::keys(pool).await?.pop() {
        let pkcs8 = kek
            .open(&associated_data(&row.key_id), &row.nonce, &row.encrypted_private)
            .map_err(|_| anyhow::anyhow!("failed to decrypt the token issuer key {}; is this the key encryption key the server uses?", row.key_id))?;
        return Ok(TokenSigner::from_pkcs8(&pkcs8)?);
    }
    let (signer, pkcs8) = TokenSigner::generate()?;
    let key_id = signer.key_id();
    let (nonce, encrypted_private) = kek.seal(&associated_data(&key_id), &pkcs8)?;
    auth_db::insert_key(pool, &AuthKeyRow { key_id: key_id.clone(), public_key: signer.public_key(), encrypted_private, nonce }).await?;
    tracing::info!(key_id = %key_id, "created the token issuer key");
    Ok(signer)
}

/// Issues a token as `args` describes and returns it.
pub async fn issue(pool: &PgPool, kek: &Kek, auth: &AuthConfig, args: &IssueArgs) -> anyhow::Result<String> {
    anyhow::ensure!(!args.guns.is_empty() || args.admin, "name the repositories with --gun PATTERN, or pass --admin");
    for action in &args.actions {
        anyhow::ensure!(matches!(action.as_str(), "pull" | "push" | "*"), "invalid action {action:?}; use pull, push or *");
    }
    for pattern in &args.guns {
        signet_core::Gun::parse(&pattern.replace('*', "x")).with_context(|| format!("invalid repository pattern {pattern:?}"))?;
    }
    let ttl = Duration::from_std(args.ttl.0).context("--ttl is too long")?;
    anyhow::ensure!(ttl > Duration::zero(), "--ttl must be more than 0");

    let signer = signer(pool, kek).await?;
    let mut id_bytes = [0u8; 16];
    SystemRandom::new().fill(&mut id_bytes).ok().context("random number generator failed")?;
    let id = hex::encode(id_bytes);
    let subject = args.subject.clone().unwrap_or_else(|| format!("token-{id}"));
    let mut access: Vec<Access> =
        args.guns.iter().map(|gun| Access { kind: "repository".to_owned(), name: gun.clone(), actions: args.actions.clone() }).collect();
    if args.admin {
        access.push(Access { kind: "admin".to_owned(), name: "*".to_owned(), actions: vec!["*".to_owned()] });
    }

    let now = Utc::now();
    let expires = now + ttl;
    let claims = Claims {
        iss: auth.issuer.clone(),
        sub: subject.clone(),
        aud: Audience::single(auth.service.clone()),
        exp: expires.timestamp(),
        nbf: Some(now.timestamp()),
        iat: Some(now.timestamp()),
        jti: Some(id.clone()),
        access,
    };
    let token = signer.sign(&claims)?;
    let access_text = serde_json::to_string(&claims.access)?;
    auth_db::insert_token(pool, &id, &subject, &access_text, &signer.key_id(), expires).await?;
    tracing::info!(id = %id, subject = %subject, "issued a token");
    Ok(token)
}

pub async fn list(pool: &PgPool) -> anyhow::Result<Vec<auth_db::TokenRow>> {
    Ok(auth_db::list_tokens(pool).await?)
}

pub async fn revoke(pool: &PgPool, id: &str) -> anyhow::Result<()> {
    anyhow::ensure!(auth_db::revoke(pool, id).await?, "no token has the id {id:?}; `signet-server token list` shows them");
    tracing::info!(id = %id, "revoked a token");
    Ok(())
}
