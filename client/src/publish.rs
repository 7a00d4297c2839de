//! Publishing: building, signing and uploading root and targets, with a bounded retry when
//! another publisher committed first.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use signet_core::metadata::format_expires;
use signet_core::signing::{sign_metadata, SigningKey};
use signet_core::RoleName;

use crate::remote::RemoteError;
use crate::state::Change;
use crate::updater::{UpdateError, Updater};

/// Attempts of one publish before the conflict is reported.
pub const MAX_ATTEMPTS: usize = 8;

/// Default lifetime of client-signed roles (root and targets), in days.
pub const DEFAULT_LIFETIME_DAYS: i64 = 365;

/// Returns the default lifetime of client-signed roles.
pub fn default_lifetime() -> Duration {
    Duration::days(DEFAULT_LIFETIME_DAYS)
}

/// Parses a lifetime written as a number and a unit: `s`, `m`, `h` or `d` (`365d`, `12h`).
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid lifetime {text:?}; write a number and a unit: s, m, h or d (for example 365d)");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| invalid())?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    let seconds = number.checked_mul(seconds_per_unit).filter(|s| *s > 0 && *s <= 100 * 365 * 86_400).ok_or_else(invalid)?;
    Ok(Duration::seconds(seconds))
}

/// Error for a failed publish.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Update(#[from] UpdateError),

    #[error(transparent)]
    Remote(#[from] RemoteError),

    #[error("another publisher kept committing first; gave up after {0} attempts")]
    Contended(usize),

    #[error("failed to sign: {0}")]
    Signing(String),
}

/// `expires` for a role signed now with `lifetime`, without fractional seconds.
pub fn expires_after(now: DateTime<Utc>, lifetime: Duration) -> String {
    format_expires(now + lifetime)
}

/// `signed` of root version 1 with one root key, one targets key and the server's keys.
pub fn initial_root(
    root_key: &SigningKey,
    targets_key: &SigningKey,
    snapshot_key: &Value,
    timestamp_key: &Value,
    now: DateTime<Utc>,
    lifetime: Duration,
) -> Result<Value, PublishError> {
    let snapshot_id = signet_core::keys::key_id(snapshot_key).map_err(|e| PublishError::Signing(e.to_string()))?;
    let timestamp_id = signet_core::keys::key_id(timestamp_key).map_err(|e| PublishError::Signing(e.to_string()))?;
    let role = |id: &str| json!({"keyids": [id], "threshold": 1});
    Ok(json!({
        "_type": "root",
        "spec_version": signet_core::metadata::SPEC_VERSION,
        "consistent_snapshot": true,
        "version": 1,
        "expires": expires_after(now, lifetime),
        "keys": {
            root_key.key_id(): root_key.tuf_key(),
            targets_key.key_id(): targets_key.tuf_key(),
            snapshot_id.clone(): snapshot_key,
            timestamp_id.clone(): timestamp_key,
        },
        "roles": {
            "root": role(root_key.key_id()),
            "targets": role(targets_key.key_id()),
            "snapshot": role(&snapshot_id),
            "timestamp": role(&timestamp_id),
        },
    }))
}

/// `signed` of the next root: `role` now uses `keys` with `threshold`, the version is bumped and
/// the expiry renewed. Keys no role lists any more are dropped; unknown fields are kept.
pub fn next_root(current: &Value, role: &str, keys: &[(String, Value)], threshold: u64, now: DateTime<Utc>, lifetime: Duration) -> Value {
    let mut next = current.clone();
    next["version"] = json!(current["version"].as_u64().unwrap_or(0) + 1);
    next["expires"] = json!(expires_after(now, lifetime));
    let ids: Vec<&String> = keys.iter().map(|(id, _)| id).collect();
    next["roles"][role] = json!({"keyids": ids, "threshold": threshold});
    if !next["keys"].is_object() {
        next["keys"] = Value::Object(Map::new());
    }
    for (id, key) in keys {
        next["keys"][id.as_str()] = key.clone();
    }

    let mut used = std::collections::BTreeSet::new();
    if let Some(roles) = next["roles"].as_object() {
        for definition in roles.values() {
            for id in definition["keyids"].as_array().into_iter().flatten() {
                if let Some(id) = id.as_str() {
                    used.insert(id.to_owned());
                }
            }
        }
    }
    if let Some(all_keys) = next["keys"].as_object_mut() {
        all_keys.retain(|id, _| used.contains(id));
    }
    next
}

/// Lifetime of snapshots the client signs when it has the snapshot key, in days.
pub const CLIENT_SNAPSHOT_LIFETIME_DAYS: i64 = 30;

/// `signed` of the next snapshot for a client-held snapshot key: the trusted snapshot's entries,
/// with `changed` targets roles (name and file bytes) replaced, and the version bumped.
pub fn client_snapshot(trusted: &signet_core::trusted::TrustedSet, changed: &[(RoleName, &[u8])], now: DateTime<Utc>) -> Result<Value, PublishError> {
    let current = trusted.snapshot().ok_or_else(|| PublishError::Signing("no trusted snapshot".to_owned()))?;
    let mut next = current.signed.clone();
    next["version"] = json!(current.version + 1);
    next["expires"] = json!(expires_after(now, Duration::days(CLIENT_SNAPSHOT_LIFETIME_DAYS)));
    for (role, bytes) in changed {
        let document = signet_core::Document::parse(bytes.to_vec(), signet_core::RoleType::Targets).map_err(|e| PublishError::Signing(e.to_string()))?;
        next["meta"][role.meta_file_name()] = json!({"version": document.version, "length": bytes.len(), "hashes": {"sha256": document.sha256}});
    }
    Ok(next)
}

/// `signed` of an empty targets role.
pub fn empty_targets(version: u64, now: DateTime<Utc>, lifetime: Duration) -> Value {
    json!({
        "_type": "targets",
        "spec_version": signet_core::metadata::SPEC_VERSION,
        "version": version,
        "expires": expires_after(now, lifetime),
        "targets": {},
    })
}

/// Applies staged changes to the current targets `signed` value and bumps its version. Unknown
/// fields of the current role are kept.
pub fn apply_changes(current: &Value, changes: &[Change], now: DateTime<Utc>, lifetime: Duration) -> Value {
    let mut next = current.clone();
    let version = current["version"].as_u64().unwrap_or(0) + 1;
    next["version"] = json!(version);
    next["expires"] = json!(expires_after(now, lifetime));
    if !next["targets"].is_object() {
        next["targets"] = Value::Object(Map::new());
    }
    for change in changes {
        match change {
            Change::Add { tag, digest, size, media_type } => {
                let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
                let mut target = json!({"length": size, "hashes": {"sha256": hex}});
                if let Some(media_type) = media_type {
                    target["custom"] = json!({"mediaType": media_type});
                }
                next["targets"][tag.as_str()] = target;
            }
            Change::Remove { tag } => {
                if let Some(targets) = next["targets"].as_object_mut() {
                    targets.remove(tag);
                }
            }
        }
    }
    next
}

/// Publishes `changes` to the top-level targets role: refreshes, applies, signs and uploads,
/// and on 409 starts over from the newest metadata, up to [`MAX_ATTEMPTS`] times.
/// With `snapshot_key`, the repository's snapshot key is client-held, and a snapshot signed with
/// it is uploaded together with targets.
pub async fn publish_changes(
    updater: &mut Updater,
    changes: &[Change],
    targets_key: &SigningKey,
    snapshot_key: Option<&SigningKey>,
    lifetime: Duration,
) -> Result<u64, PublishError> {
    for _ in 0..MAX_ATTEMPTS {
        updater.restart(Utc::now())?;
        updater.refresh().await?;
        let current = updater
            .trusted()
            .targets(&RoleName::targets())
            .map(|(document, _)| document.signed.clone())
            .ok_or_else(|| PublishError::Signing("no trusted targets role".to_owned()))?;
        let next = apply_changes(&current, changes, Utc::now(), lifetime);
        let version = next["version"].as_u64().unwrap_or_default();
        let bytes = sign_metadata(&next, &[targets_key]).map_err(|e| PublishError::Signing(e.to_string()))?;
        let mut parts = vec![(RoleName::TARGETS.to_owned(), bytes.clone())];
        if let Some(snapshot_key) = snapshot_key {
            let snapshot = client_snapshot(updater.trusted(), &[(RoleName::targets(), &bytes)], Utc::now())?;
            parts.push((RoleName::SNAPSHOT.to_owned(), sign_metadata(&snapshot, &[snapshot_key]).map_err(|e| PublishError::Signing(e.to_string()))?));
        }
        match updater.remote().upload(parts).await {
            Ok(()) => return Ok(version),
            Err(error) if error.is_conflict() => {
                // Another publisher won this version: wait a little, re-read and re-apply.
                let jitter = u64::from(std::process::id() % 50);
                tokio::time::sleep(std::time::Duration::from_millis(50 + jitter)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(PublishError::Contended(MAX_ATTEMPTS))
}
