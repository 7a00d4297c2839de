//! Repository operations that span tables: publishing an upload, re-signing snapshot and
//! timestamp, handing out server keys and deleting a repository.
//!
//! Every write runs in one REPEATABLE READ transaction. Each one inserts the next timestamp
//! version, so two writers that read the same state collide on the unique (gun, role, version)
//! constraint and exactly one commits; the other gets 409. No advisory locks are used.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use signet_core::metadata::{CheckedRoot, RoleType};
use signet_core::signing::{sign_metadata, KeyAlgorithm, SigningKey};
use signet_core::upload::{
    held_role_keys, meets_threshold, snapshot_signed, timestamp_signed, validate_upload, FileInfo, HeldKeys, StoredRepository, UploadError,
};
use signet_core::{Document, Gun, RoleName};
use sqlx::PgConnection;

use crate::db::server_keys::{self, ServerKeyRow};
use crate::db::{changefeed, tuf_files};
use crate::error::{ApiError, ApiResult};
use crate::keys::associated_data;
use crate::state::AppState;

/// Versions written by a successful publish.
/// Actor recorded for changes the server makes on its own, such as re-signing timestamps.
pub const SERVER_ACTOR: &str = "signet-server";

#[derive(Debug, Clone, Copy)]
pub struct PublishOutcome {
    pub snapshot_version: u64,
    pub timestamp_version: u64,
}

/// Validates and stores an upload, then signs the new snapshot (when server-held) and timestamp
/// in the same transaction.
pub async fn publish(state: &AppState, gun: &Gun, parts: Vec<(String, Vec<u8>)>, actor: &str) -> ApiResult<PublishOutcome> {
    let now = Utc::now();
    let mut tx = state.pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await?;

    let stored = load_stored(&mut tx, gun).await?;
    let key_rows = server_keys::list(&mut tx, gun.as_str()).await?;
    let held = held_keys(&key_rows);
    let accepted = validate_upload(&stored, parts, &held, now).map_err(upload_error)?;

    if let Some(root) = &accepted.root {
        tuf_files::insert(&mut tx, gun.as_str(), RoleName::ROOT, root).await?;
        let checked = CheckedRoot::from_document(root).map_err(|e| ApiError::internal("accepted root failed to parse", &e))?;
        for role in [RoleName::TIMESTAMP, RoleName::SNAPSHOT] {
            let listed = checked.role(role).map(|r| r.keyids.clone()).unwrap_or_default();
            server_keys::apply_root(&mut tx, gun.as_str(), role, &listed).await?;
        }
    }
    for (role, document) in &accepted.targets_roles {
        tuf_files::insert(&mut tx, gun.as_str(), role.as_str(), document).await?;
    }

    let snapshot = if accepted.server_signs_snapshot {
        let version = next_version(stored.snapshot.as_ref());
        let signed = snapshot_signed(version, expiry(now, state.config.snapshot_lifetime), &accepted.snapshot_meta);
        let keys = signing_keys(state, gun, &key_rows, RoleName::SNAPSHOT, &accepted.snapshot_key_ids)?;
        let document = sign_document(&signed, &keys, RoleType::Snapshot)?;
        tuf_files::insert(&mut tx, gun.as_str(), RoleName::SNAPSHOT, &document).await?;
        document
    } else if let Some(document) = accepted.client_snapshot {
        tuf_files::insert(&mut tx, gun.as_str(), RoleName::SNAPSHOT, &document).await?;
        document
    } else {
        stored.snapshot.clone().ok_or_else(|| ApiError::internal("no snapshot after validation", &"stored snapshot missing"))?
    };

    let timestamp = write_timestamp(state, &mut tx, gun, &stored, &key_rows, &accepted.timestamp_key_ids, &snapshot, now, actor).await?;
    tx.commit().await?;
    state.cache.invalidate(gun.as_str());

    tracing::info!(gun = %gun, actor, snapshot_version = snapshot.version, timestamp_version = timestamp.version, "published");
    Ok(PublishOutcome { snapshot_version: snapshot.version, timestamp_version: timestamp.version })
}

/// Re-signs the timestamp, and the snapshot when the server has its key and it passed half
/// its lifetime. Returns false when there was nothing to do or another process did it first.
pub async fn resign(state: &AppState, gun: &str) -> Result<bool, ApiError> {
    let now = Utc::now();
    let gun = Gun::parse(gun).map_err(|e| ApiError::internal("stored repository name is invalid", &e))?;
    let mut tx = state.pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await?;

    let stored = load_stored(&mut tx, &gun).await?;
    let (Some(root), Some(snapshot)) = (&stored.root, &stored.snapshot) else {
        return Ok(false);
    };
    let root = CheckedRoot::from_document(root).map_err(|e| ApiError::internal("stored root failed to parse", &e))?;
    let key_rows = server_keys::list(&mut tx, gun.as_str()).await?;
    let held = held_keys(&key_rows);
    let timestamp_key_ids = held_role_keys(&root, RoleName::TIMESTAMP, &held.timestamp);
    let snapshot_key_ids = held_role_keys(&root, RoleName::SNAPSHOT, &held.snapshot);
    let server_signs_snapshot = meets_threshold(&root, RoleName::SNAPSHOT, &snapshot_key_ids);

    let snapshot_due = snapshot.expires < expiry(now, state.config.snapshot_lifetime / 2);
    let timestamp_due = stored.timestamp.as_ref().is_none_or(|t| t.expires < expiry(now, state.config.timestamp_lifetime / 2));
    if !timestamp_due && !(server_signs_snapshot && snapshot_due) {
        return Ok(false);
    }
    let snapshot = if server_signs_snapshot && snapshot_due {
        let meta = stored.targets_roles.iter().map(|(role, document)| (role.clone(), FileInfo::of(document))).collect();
        let signed = snapshot_signed(snapshot.version + 1, expiry(now, state.config.snapshot_lifetime), &meta);
        let keys = signing_keys(state, &gun, &key_rows, RoleName::SNAPSHOT, &snapshot_key_ids)?;
        let document = sign_document(&signed, &keys, RoleType::Snapshot)?;
        tuf_files::insert(&mut tx, gun.as_str(), RoleName::SNAPSHOT, &document).await?;
        document
    } else {
        snapshot.clone()
    };

    let timestamp = write_timestamp(state, &mut tx, &gun, &stored, &key_rows, &timestamp_key_ids, &snapshot, now, SERVER_ACTOR).await?;
    match tx.commit().await {
        Ok(()) => {}
        Err(error) if crate::error::is_conflict(&error) => return Ok(false),
        Err(error) => return Err(error.into()),
    }
    state.cache.invalidate(gun.as_str());
    tracing::info!(gun = %gun, snapshot_version = snapshot.version, timestamp_version = timestamp.version, "re-signed timestamp");
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
async fn write_timestamp(
    state: &AppState,
    conn: &mut PgConnection,
    gun: &Gun,
    stored: &StoredRepository,
    key_rows: &[ServerKeyRow],
    key_ids: &[String],
    snapshot: &Document,
    now: DateTime<Utc>,
    actor: &str,
) -> ApiResult<Document> {
    let version = next_version(stored.timestamp.as_ref());
    let signed = timestamp_signed(version, expiry(now, state.config.timestamp_lifetime), &FileInfo::of(snapshot));
    let keys = signing_keys(state, gun, key_rows, RoleName::TIMESTAMP, key_ids)?;
    let document = sign_document(&signed, &keys, RoleType::Timestamp)?;
    tuf_files::insert(conn, gun.as_str(), RoleName::TIMESTAMP, &document).await?;
    changefeed::record_update(conn, gun.as_str(), document.version, &document.sha256, actor).await?;
    Ok(document)
}

/// Returns the public key a client should list in root for `role`: the active key root lists,
/// else the pending key, creating one for a repository that has no root yet.
pub async fn server_key(state: &AppState, gun: &Gun, role: &str) -> ApiResult<Value> {
    let mut conn = state.pool.acquire().await?;
    let root = tuf_files::current(&state.pool, gun.as_str(), RoleName::ROOT).await?;
    let rows = server_keys::list(&mut conn, gun.as_str()).await?;

    if let Some(root) = &root {
        let document = Document::parse(root.data.clone(), RoleType::Root).map_err(|e| ApiError::internal("stored root failed to parse", &e))?;
        let checked = CheckedRoot::from_document(&document).map_err(|e| ApiError::internal("stored root failed to parse", &e))?;
        let listed = checked.role(role).map(|r| r.keyids.clone()).unwrap_or_default();
        if let Some(row) = rows.iter().find(|row| row.role == role && row.state == "active" && listed.contains(&row.key_id)) {
            return public_key_json(row);
        }
    }
    if let Some(row) = rows.iter().find(|row| row.role == role && row.state == "pending") {
        return public_key_json(row);
    }
    if root.is_some() {
        return Err(ApiError::not_found(format!(
            "the server has no {role} key for {gun} because root names a {role} key held elsewhere; POST {role}.key creates one"
        )));
    }
    create_pending(state, &mut conn, gun, role).await
}

/// Starts a rotation of a server-held key: returns the pending key of `role`, creating it when
/// there is none. The server keeps signing with the current key until a root that lists the
/// pending key is accepted.
pub async fn rotate_key(state: &AppState, gun: &Gun, role: &str) -> ApiResult<Value> {
    let mut conn = state.pool.acquire().await?;
    if tuf_files::current(&state.pool, gun.as_str(), RoleName::ROOT).await?.is_none() {
        return Err(ApiError::not_found(format!("repository {gun} has no root yet; GET {role}.key returns the key to list in root")));
    }
    let rows = server_keys::list(&mut conn, gun.as_str()).await?;
    if let Some(row) = rows.iter().find(|row| row.role == role && row.state == "pending") {
        return public_key_json(row);
    }
    create_pending(state, &mut conn, gun, role).await
}

/// Creates the one pending key of `role`. A concurrent request may win the insert; then its key
/// is read back, so every caller sees the same key.
async fn create_pending(state: &AppState, conn: &mut PgConnection, gun: &Gun, role: &str) -> ApiResult<Value> {
    let row = generate_key_row(state, gun, role)?;
    if !server_keys::insert_pending(conn, gun.as_str(), &row).await? {
        let rows = server_keys::list(conn, gun.as_str()).await?;
        let pending = rows.iter().find(|row| row.role == role && row.state == "pending");
        return pending.map_or_else(|| Err(ApiError::conflict("a key request for this repository raced with a deletion; retry")), public_key_json);
    }
    tracing::info!(gun = %gun, role, key_id = %row.key_id, "created pending server key");
    public_key_json(&row)
}

/// Deletes a repository's metadata and server keys. Returns false when it had neither.
pub async fn delete(state: &AppState, gun: &Gun, actor: &str) -> ApiResult<bool> {
    let mut tx = state.pool.begin().await?;
    let files = tuf_files::delete_repository(&mut tx, gun.as_str()).await?;
    let keys = server_keys::delete_repository(&mut tx, gun.as_str()).await?;
    if files == 0 && keys == 0 {
        return Ok(false);
    }
    changefeed::record_deletion(&mut tx, gun.as_str(), actor).await?;
    tx.commit().await?;
    state.cache.remove(gun.as_str());
    tracing::info!(gun = %gun, actor, files, keys, "deleted repository");
    Ok(true)
}

async fn load_stored(conn: &mut PgConnection, gun: &Gun) -> ApiResult<StoredRepository> {
    let mut stored = StoredRepository::default();
    for (role, bytes) in tuf_files::current_all(conn, gun.as_str()).await? {
        let role = RoleName::parse(&role).map_err(|e| ApiError::internal("stored role name is invalid", &e))?;
        let document = Document::parse(bytes, RoleType::of(&role))
            .map_err(|e| ApiError::internal(&format!("stored {role} metadata of {gun} failed to parse"), &e))?;
        match role.as_str() {
            RoleName::ROOT => stored.root = Some(document),
            RoleName::SNAPSHOT => stored.snapshot = Some(document),
            RoleName::TIMESTAMP => stored.timestamp = Some(document),
            _ => {
                stored.targets_roles.insert(role, document);
            }
        }
    }
    Ok(stored)
}

fn held_keys(rows: &[ServerKeyRow]) -> HeldKeys {
    let mut held = HeldKeys::default();
    for row in rows {
        match row.role.as_str() {
            RoleName::TIMESTAMP => held.timestamp.insert(row.key_id.clone()),
            RoleName::SNAPSHOT => held.snapshot.insert(row.key_id.clone()),
            _ => false,
        };
    }
    held
}

fn signing_keys(state: &AppState, gun: &Gun, rows: &[ServerKeyRow], role: &str, key_ids: &[String]) -> ApiResult<Vec<SigningKey>> {
    let mut keys = Vec::new();
    for row in rows.iter().filter(|row| row.role == role && key_ids.contains(&row.key_id)) {
        let aad = associated_data(gun.as_str(), role, &row.key_id);
        let pkcs8 = state.kek.open(&aad, &row.nonce, &row.encrypted_private).map_err(|e| ApiError::internal("cannot sign", &e))?;
        let algorithm = KeyAlgorithm::parse(&row.algorithm)
            .ok_or_else(|| ApiError::internal("cannot sign", &format!("unknown key algorithm {:?}", row.algorithm)))?;
        keys.push(SigningKey::from_pkcs8(algorithm, &pkcs8).map_err(|e| ApiError::internal("cannot sign", &e))?);
    }
    if keys.is_empty() {
        return Err(ApiError::internal("cannot sign", &format!("no server-held {role} key for {gun}")));
    }
    Ok(keys)
}

fn generate_key_row(state: &AppState, gun: &Gun, role: &str) -> ApiResult<ServerKeyRow> {
    let algorithm = state.config.server_key_algorithm;
    let (key, pkcs8) = SigningKey::generate(algorithm).map_err(|e| ApiError::internal("key generation failed", &e))?;
    let aad = associated_data(gun.as_str(), role, key.key_id());
    let (nonce, encrypted_private) = state.kek.seal(&aad, &pkcs8).map_err(|e| ApiError::internal("key encryption failed", &e))?;
    Ok(ServerKeyRow {
        role: role.to_owned(),
        key_id: key.key_id().to_owned(),
        algorithm: algorithm.name().to_owned(),
        public_key: key.tuf_key().to_string(),
        encrypted_private,
        nonce,
        state: "pending".to_owned(),
    })
}

fn public_key_json(row: &ServerKeyRow) -> ApiResult<Value> {
    serde_json::from_str(&row.public_key).map_err(|e| ApiError::internal("stored public key is not JSON", &e))
}

fn sign_document(signed: &Value, keys: &[SigningKey], role_type: RoleType) -> ApiResult<Document> {
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let bytes = sign_metadata(signed, &refs).map_err(|e| ApiError::internal("signing failed", &e))?;
    Document::parse(bytes, role_type).map_err(|e| ApiError::internal("signed metadata failed to parse", &e))
}

fn next_version(current: Option<&Document>) -> u64 {
    current.map_or(1, |document| document.version + 1)
}

/// `now + lifetime`, truncated to whole seconds as TUF `expires` requires.
fn expiry(now: DateTime<Utc>, lifetime: std::time::Duration) -> DateTime<Utc> {
    let at = now + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::days(1));
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// Maps a validation failure to the API error: 409 for stale or racing uploads, else 400.
fn upload_error(error: UploadError) -> ApiError {
    let message = error.to_string();
    if let Some((role, current)) = error.current_version() {
        return ApiError::conflict(message).with_detail(json!({"role": role.as_str(), "current_version": current}));
    }
    let code = match &error {
        UploadError::InvalidRole(_) | UploadError::TimestampUploaded => "INVALID_ROLE",
        UploadError::Metadata { source: signet_core::MetadataError::Canonical(_), .. } => "MALFORMED_JSON",
        UploadError::Metadata { source: signet_core::MetadataError::Envelope, .. } => "MALFORMED_JSON",
        _ => "INVALID_UPDATE",
    };
    ApiError::bad_request(code, message)
}
