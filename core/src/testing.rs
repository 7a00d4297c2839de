//! Builders for signed metadata, shared by the unit tests of this crate.

use chrono::{DateTime, Duration, Utc};
use ring::digest::{digest, SHA256};
use serde_json::{json, Value};

use crate::metadata::format_expires;
use crate::signing::{sign_metadata, KeyAlgorithm, SigningKey};
use crate::upload::FileInfo;

pub fn key() -> SigningKey {
    SigningKey::generate(KeyAlgorithm::Ed25519).unwrap().0
}

pub struct Keys {
    pub root: SigningKey,
    pub targets: SigningKey,
    pub snapshot: SigningKey,
    pub timestamp: SigningKey,
}

pub fn keys() -> Keys {
    Keys { root: key(), targets: key(), snapshot: key(), timestamp: key() }
}

pub fn later(days: i64) -> DateTime<Utc> {
    DateTime::from_timestamp((Utc::now() + Duration::days(days)).timestamp(), 0).unwrap()
}

pub fn root(version: u64, keys: &Keys, expires: DateTime<Utc>) -> Value {
    let entry = |k: &SigningKey| json!({"keyids": [k.key_id()], "threshold": 1});
    json!({
        "_type": "root", "spec_version": "1.0.34", "consistent_snapshot": true, "version": version,
        "expires": format_expires(expires),
        "keys": {
            keys.root.key_id(): keys.root.tuf_key(), keys.targets.key_id(): keys.targets.tuf_key(),
            keys.snapshot.key_id(): keys.snapshot.tuf_key(), keys.timestamp.key_id(): keys.timestamp.tuf_key(),
        },
        "roles": {"root": entry(&keys.root), "targets": entry(&keys.targets), "snapshot": entry(&keys.snapshot), "timestamp": entry(&keys.timestamp)},
    })
}

pub fn targets(version: u64) -> Value {
    json!({"_type": "targets", "spec_version": "1.0.34", "version": version, "expires": format_expires(later(30)),
        "targets": {"latest": {"length": 10, "hashes": {"sha256": "ab".repeat(32)}}}})
}

pub fn signed(value: &Value, key: &SigningKey) -> Vec<u8> {
    sign_metadata(value, &[key]).unwrap()
}

pub fn info(bytes: &[u8], version: u64) -> FileInfo {
    FileInfo { version, length: bytes.len() as u64, sha256: hex::encode(digest(&SHA256, bytes)) }
}


/// A trusted set holding root, timestamp, snapshot and the top-level `targets_value`; the
/// snapshot also lists `delegated` roles at version 1 without hashes.
pub fn trusted_set(keys: &Keys, targets_value: &Value, delegated: &[&str]) -> crate::trusted::TrustedSet {
    use crate::trusted::TrustedSet;
    let mut set = TrustedSet::new(signed(&root(1, keys, later(365)), &keys.root), Utc::now()).expect("root");
    let mut meta = serde_json::Map::new();
    meta.insert("targets.json".to_owned(), json!({"version": 1}));
    for role in delegated {
        meta.insert(format!("{role}.json"), json!({"version": 1}));
    }
    let snapshot = json!({"_type": "snapshot", "spec_version": "1.0.34", "version": 1, "expires": format_expires(later(7)), "meta": meta});
    let snapshot = signed(&snapshot, &keys.snapshot);
    let timestamp = crate::upload::timestamp_signed(1, later(1), &info(&snapshot, 1));
    set.update_timestamp(signed(&timestamp, &keys.timestamp)).expect("timestamp");
    set.update_snapshot(snapshot).expect("snapshot");
    set.update_targets(&crate::RoleName::targets(), None, signed(targets_value, &keys.targets)).expect("targets");
    set
}

/// `signed` of a targets role listing `names`.
pub fn targets_with(names: &[&str]) -> Value {
    let mut entries = serde_json::Map::new();
    for name in names {
        entries.insert((*name).to_owned(), json!({"length": 10, "hashes": {"sha256": "ab".repeat(32)}}));
    }
    json!({"_type": "targets", "spec_version": "1.0.34", "version": 1, "expires": format_expires(later(30)), "targets": entries})
}
