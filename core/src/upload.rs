//! Validation of an upload against a repository's stored metadata.
//!
//! An upload is accepted only if the repository it leaves behind verifies as a whole under the
//! root it leaves behind: the new root against the old one, every targets role stored or
//! uploaded against its delegator, and a client-signed snapshot against the targets roles it
//! describes. Snapshot and timestamp signed by the server are produced afterwards from the
//! [`AcceptedUpload`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::metadata::{
    format_expires, CheckedRoot, CheckedTargets, Document, Meta, MetaFile, MetadataError, RoleKeys, RoleType,
    SPEC_VERSION,
};
use crate::names::{NameError, RoleName};
use crate::verify::{verify_threshold, ThresholdNotMet};

/// A repository's current metadata, as stored.
#[derive(Debug, Clone, Default)]
pub struct StoredRepository {
    pub root: Option<Document>,
    /// Current version of `targets` and of every delegated role.
    pub targets_roles: BTreeMap<RoleName, Document>,
    pub snapshot: Option<Document>,
    pub timestamp: Option<Document>,
}

/// Key ids of the server-held keys the server can sign with for one repository.
#[derive(Debug, Clone, Default)]
pub struct HeldKeys {
    pub timestamp: BTreeSet<String>,
    pub snapshot: BTreeSet<String>,
}

/// Error for a rejected upload. [`UploadError::is_conflict`] separates a stale or racing upload
/// (HTTP 409) from an invalid one (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the upload contains no metadata; send at least one role")]
    Empty,

    #[error(transparent)]
    InvalidRole(#[from] NameError),

    #[error("role {0} appears more than once in the upload")]
    DuplicateRole(RoleName),

    #[error("timestamp is signed by the server; do not upload it")]
    TimestampUploaded,

    #[error("{role}: {source}")]
    Metadata { role: RoleName, #[source] source: MetadataError },

    #[error("{role}: expired at {expires}; sign it with a later expiry")]
    Expired { role: RoleName, expires: String },

    #[error("{role}: version {uploaded} is not newer than the stored version {current}; fetch the current metadata and retry")]
    VersionNotIncreased { role: RoleName, current: u64, uploaded: u64 },

    #[error("root: version {uploaded} skips versions; the next root must be version {expected}")]
    RootVersionSkipped { expected: u64, uploaded: u64 },

    #[error("{0}")]
    Threshold(ThresholdNotMet),

    #[error("{source}; a root that changes the {role} keys or threshold must be uploaded together with {role} signed to the new rule")]
    StoredRoleBroken { role: RoleName, #[source] source: ThresholdNotMet },

    #[error("the repository has no root; upload root first")]
    NoRoot,

    #[error("the repository has no targets role; upload targets together with the first root")]
    NoTargets,

    #[error("root: the timestamp role must be signed by the server; list the key from GET .../_trust/tuf/timestamp.key with threshold 1")]
    TimestampKeyNotHeld,

    #[error("{0}: no stored or uploaded role delegates to it")]
    NotDelegated(RoleName),

    #[error("{role}: target {target:?} is outside the paths its delegation allows")]
    TargetOutsideDelegation { role: RoleName, target: String },

    #[error("snapshot: this server signs snapshot for this repository; do not upload it")]
    SnapshotServerSigned,

    #[error("snapshot: root lists a snapshot key the server does not hold, so the upload must include a snapshot signed by that key")]
    SnapshotRequired,

    #[error("snapshot: {0}")]
    SnapshotMismatch(String),
}

impl UploadError {
    /// True when the upload lost a race or was built on stale metadata (HTTP 409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, UploadError::VersionNotIncreased { .. })
    }

    /// The stored version the client must refresh from, for the error detail.
    pub fn current_version(&self) -> Option<(RoleName, u64)> {
        match self {
            UploadError::VersionNotIncreased { role, current, .. } => Some((role.clone(), *current)),
            _ => None,
        }
    }
}

/// Version, length and SHA-256 of one stored file, as snapshot and timestamp describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub version: u64,
    pub length: u64,
    pub sha256: String,
}

impl FileInfo {
    pub fn of(document: &Document) -> FileInfo {
        FileInfo { version: document.version, length: document.bytes.len() as u64, sha256: document.sha256.clone() }
    }
}

/// Metadata to store after a successful validation.
#[derive(Debug, Clone)]
pub struct AcceptedUpload {
    pub root: Option<Document>,
    pub targets_roles: Vec<(RoleName, Document)>,
    /// A snapshot signed by the client, when the server does not hold the snapshot key.
    pub client_snapshot: Option<Document>,
    /// Whether the server signs a new snapshot for this upload.
    pub server_signs_snapshot: bool,
    /// Every targets role the resulting repository holds, for a server-signed snapshot.
    pub snapshot_meta: BTreeMap<RoleName, FileInfo>,
    /// Server-held key ids root lists for timestamp.
    pub timestamp_key_ids: Vec<String>,
    /// Server-held key ids root lists for snapshot.
    pub snapshot_key_ids: Vec<String>,
}

/// Validates `parts` (role name and bytes, as uploaded) against `stored`.
pub fn validate_upload(
    stored: &StoredRepository,
    parts: Vec<(String, Vec<u8>)>,
    held: &HeldKeys,
    now: DateTime<Utc>,
) -> Result<AcceptedUpload, UploadError> {
    if parts.is_empty() {
        return Err(UploadError::Empty);
    }
    let uploads = parse_parts(parts)?;

    // Root: TUF 5.3.4 and 5.3.5 applied on upload, so every client can follow the chain.
    let uploaded_root = uploads.get(&RoleName::root());
    if let Some(document) = uploaded_root {
        check_uploaded_root(stored, document, now)?;
    }
    let root_document = uploaded_root.or(stored.root.as_ref()).ok_or(UploadError::NoRoot)?;
    let root = checked(&RoleName::root(), CheckedRoot::from_document(root_document))?;

    let timestamp_key_ids = held_role_keys(&root, RoleName::TIMESTAMP, &held.timestamp);
    if uploaded_root.is_some() && !meets_threshold(&root, RoleName::TIMESTAMP, &timestamp_key_ids) {
        return Err(UploadError::TimestampKeyNotHeld);
    }
    let snapshot_key_ids = held_role_keys(&root, RoleName::SNAPSHOT, &held.snapshot);
    let server_signs_snapshot = meets_threshold(&root, RoleName::SNAPSHOT, &snapshot_key_ids);

    // Targets roles: newer versions, unexpired, and a whole delegation tree that verifies.
    let mut resulting = stored.targets_roles.clone();
    let mut uploaded_targets = Vec::new();
    for (role, document) in &uploads {
        if !role.is_targets_like() {
            continue;
        }
        if let Some(current) = stored.targets_roles.get(role) {
            if document.version <= current.version {
                return Err(UploadError::VersionNotIncreased {
                    role: role.clone(),
                    current: current.version,
                    uploaded: document.version,
                });
            }
        }
        check_unexpired(role, document, now)?;
        resulting.insert(role.clone(), document.clone());
        uploaded_targets.push((role.clone(), document.clone()));
    }
    if !resulting.contains_key(&RoleName::targets()) {
        return Err(UploadError::NoTargets);
    }
    let uploaded_names: BTreeSet<RoleName> = uploaded_targets.iter().map(|(role, _)| role.clone()).collect();
    verify_targets_tree(&root, &resulting, &uploaded_names)?;

    let snapshot_meta: BTreeMap<RoleName, FileInfo> =
        resulting.iter().map(|(role, document)| (role.clone(), FileInfo::of(document))).collect();

    // Snapshot: signed by the server when it has the key that root names, otherwise by the client.
    let uploaded_snapshot = uploads.get(&RoleName::snapshot());
    let client_snapshot = if server_signs_snapshot {
        if uploaded_snapshot.is_some() {
            return Err(UploadError::SnapshotServerSigned);
        }
        None
    } else {
        check_client_snapshot(stored, &root, uploaded_snapshot, &snapshot_meta, !uploaded_targets.is_empty(), now)?
    };

    Ok(AcceptedUpload {
        root: uploaded_root.cloned(),
        targets_roles: uploaded_targets,
        client_snapshot,
        server_signs_snapshot,
        snapshot_meta,
        timestamp_key_ids,
        snapshot_key_ids,
    })
}

fn parse_parts(parts: Vec<(String, Vec<u8>)>) -> Result<BTreeMap<RoleName, Document>, UploadError> {
    let mut uploads = BTreeMap::new();
    for (name, bytes) in parts {
        let role = RoleName::parse(&name)?;
        if role.as_str() == RoleName::TIMESTAMP {
            return Err(UploadError::TimestampUploaded);
        }
        if uploads.contains_key(&role) {
            return Err(UploadError::DuplicateRole(role));
        }
        let document = checked(&role, Document::parse(bytes, RoleType::of(&role)))?;
        uploads.insert(role, document);
    }
    Ok(uploads)
}

fn checked<T>(role: &RoleName, result: Result<T, MetadataError>) -> Result<T, UploadError> {
    result.map_err(|source| UploadError::Metadata { role: role.clone(), source })
}

fn check_unexpired(role: &RoleName, document: &Document, now: DateTime<Utc>) -> Result<(), UploadError> {
    if document.is_expired(now) {
        return Err(UploadError::Expired { role: role.clone(), expires: format_expires(document.expires) });
    }
    Ok(())
}

fn check_uploaded_root(stored: &StoredRepository, document: &Document, now: DateTime<Utc>) -> Result<(), UploadError> {
    let role = RoleName::root();
    let new_root = checked(&role, CheckedRoot::from_document(document))?;
    check_unexpired(&role, document, now)?;

    if let Some(current) = &stored.root {
        if document.version <= current.version {
            return Err(UploadError::VersionNotIncreased { role, current: current.version, uploaded: document.version });
        }
        let expected = current.version + 1;
        if document.version != expected {
            return Err(UploadError::RootVersionSkipped { expected, uploaded: document.version });
        }
        // TUF 5.3.4: a new root is signed by a threshold of the previous root's keys.
        let old_root = checked(&role, CheckedRoot::from_document(current))?;
        verify_role(document, &old_root, RoleName::ROOT, &format!("root version {} keys", current.version))?;
    }

    // TUF 5.3.4: and by a threshold of its own root keys.
    verify_role(document, &new_root, RoleName::ROOT, &format!("root version {} keys", document.version))
}

fn verify_role(document: &Document, root: &CheckedRoot, role: &str, signer: &str) -> Result<(), UploadError> {
    let definition = root.role(role).ok_or(UploadError::Metadata {
        role: RoleName::root(),
        source: MetadataError::MissingRole(static_role(role)),
    })?;
    verify_threshold(document, role, signer, definition, &root.keys).map_err(UploadError::Threshold)
}

fn static_role(role: &str) -> &'static str {
    match role {
        RoleName::ROOT => RoleName::ROOT,
        RoleName::TARGETS => RoleName::TARGETS,
        RoleName::SNAPSHOT => RoleName::SNAPSHOT,
        _ => RoleName::TIMESTAMP,
    }
}

/// Returns the key ids that root lists for `role` and the server has, in root's order.
pub fn held_role_keys(root: &CheckedRoot, role: &str, held: &BTreeSet<String>) -> Vec<String> {
    root.role(role).map(|definition| definition.keyids.iter().filter(|id| held.contains(*id)).cloned().collect()).unwrap_or_default()
}

/// Returns whether `key_ids` are enough signers for root's threshold of `role`.
pub fn meets_threshold(root: &CheckedRoot, role: &str, key_ids: &[String]) -> bool {
    root.role(role).is_some_and(|definition| key_ids.len() as u64 >= definition.threshold)
}

/// Verifies `targets` under root and every reachable delegated role under its delegator.
fn verify_targets_tree(
    root: &CheckedRoot,
    resulting: &BTreeMap<RoleName, Document>,
    uploaded: &BTreeSet<RoleName>,
) -> Result<(), UploadError> {
    let top = RoleName::targets();
    let mut reached = BTreeSet::new();
    let mut queue = VecDeque::new();

    if let Some(document) = resulting.get(&top) {
        let signer = format!("root version {} targets keys", root.root.version);
        let definition = root.role(RoleName::TARGETS).cloned().unwrap_or(RoleKeys { keyids: vec![], threshold: 1 });
        check_signed_to_rule(document, &top, &signer, &definition, &root.keys, uploaded)?;
        reached.insert(top.clone());
        queue.push_back(top);
    }

    // Breadth-first over delegations; `reached` also stops delegation cycles.
    while let Some(delegator) = queue.pop_front() {
        let Some(document) = resulting.get(&delegator) else {
            continue;
        };
        let delegations = checked(&delegator, CheckedTargets::from_document(document))?;
        for delegation in &delegations.delegated_roles {
            let Ok(role) = RoleName::parse(&delegation.name) else {
                continue;
            };
            let Some(delegated) = resulting.get(&role) else {
                continue;
            };
            let signer = format!("{delegator} delegation keys");
            let definition = RoleKeys { keyids: delegation.keyids.clone(), threshold: delegation.threshold };
            check_signed_to_rule(delegated, &role, &signer, &definition, &delegations.delegation_keys, uploaded)?;

            let delegated_targets = checked(&role, CheckedTargets::from_document(delegated))?;
            if let Some(outside) = delegated_targets.targets.targets.keys().find(|name| !delegation.matches(name)) {
                return Err(UploadError::TargetOutsideDelegation { role, target: outside.clone() });
            }
            if reached.insert(role.clone()) {
                queue.push_back(role);
            }
        }
    }

    match uploaded.iter().find(|role| !reached.contains(*role)) {
        Some(orphan) => Err(UploadError::NotDelegated(orphan.clone())),
        None => Ok(()),
    }
}

fn check_signed_to_rule(
    document: &Document,
    role: &RoleName,
    signer: &str,
    definition: &RoleKeys,
    keys: &BTreeMap<String, crate::keys::PublicKey>,
    uploaded: &BTreeSet<RoleName>,
) -> Result<(), UploadError> {
    match verify_threshold(document, role.as_str(), signer, definition, keys) {
        Ok(()) => Ok(()),
        Err(source) if uploaded.contains(role) => Err(UploadError::Threshold(source)),
        Err(source) => Err(UploadError::StoredRoleBroken { role: role.clone(), source }),
    }
}

fn check_client_snapshot(
    stored: &StoredRepository,
    root: &CheckedRoot,
    uploaded: Option<&Document>,
    expected_meta: &BTreeMap<RoleName, FileInfo>,
    targets_changed: bool,
    now: DateTime<Utc>,
) -> Result<Option<Document>, UploadError> {
    let role = RoleName::snapshot();
    let Some(document) = uploaded else {
        // Without an upload the stored snapshot stays current, which is only valid if nothing it
        // describes changed and it still verifies under the resulting root.
        let stored_valid = stored.snapshot.as_ref().is_some_and(|snapshot| {
            verify_role(snapshot, root, RoleName::SNAPSHOT, "snapshot keys").is_ok()
        });
        if targets_changed || !stored_valid {
            return Err(UploadError::SnapshotRequired);
        }
        return Ok(None);
    };

    if let Some(current) = &stored.snapshot {
        if document.version <= current.version {
            return Err(UploadError::VersionNotIncreased { role, current: current.version, uploaded: document.version });
        }
    }
    check_unexpired(&role, document, now)?;
    verify_role(document, root, RoleName::SNAPSHOT, &format!("root version {} snapshot keys", root.root.version))?;

    let meta: Meta = checked(&role, document.typed())?;
    let mismatch = |message: String| Err(UploadError::SnapshotMismatch(message));
    for (name, info) in expected_meta {
        let file_name = name.meta_file_name();
        let Some(entry) = meta.meta.get(&file_name) else {
            return mismatch(format!("meta has no entry for {file_name}, version {}", info.version));
        };
        if let Some(problem) = describe_mismatch(entry, info) {
            return mismatch(format!("{file_name}: {problem}"));
        }
    }
    if let Some(extra) = meta.meta.keys().find(|file| !expected_meta.keys().any(|role| role.meta_file_name() == **file)) {
        return mismatch(format!("meta lists {extra}, which the repository does not hold"));
    }
    Ok(Some(document.clone()))
}

fn describe_mismatch(entry: &MetaFile, info: &FileInfo) -> Option<String> {
    if entry.version != info.version {
        return Some(format!("version {} in meta, stored version is {}", entry.version, info.version));
    }
    if entry.length.is_some_and(|length| length != info.length) {
        return Some(format!("length in meta differs from the stored length {}", info.length));
    }
    if let Some(hashes) = &entry.hashes {
        if hashes.get("sha256").is_some_and(|hash| !hash.eq_ignore_ascii_case(&info.sha256)) {
            return Some("sha256 in meta differs from the stored file".to_owned());
        }
    }
    None
}

/// Builds `signed` of a snapshot describing `meta`, with version, length and SHA-256 of each
/// targets role (consistent snapshots: clients fetch `VERSION.ROLE.json`).
pub fn snapshot_signed(version: u64, expires: DateTime<Utc>, meta: &BTreeMap<RoleName, FileInfo>) -> Value {
    let mut entries = Map::new();
    for (role, info) in meta {
        entries.insert(role.meta_file_name(), file_info_json(info));
    }
    json!({
        "_type": "snapshot",
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": format_expires(expires),
        "meta": entries,
    })
}

/// Builds `signed` of a timestamp pointing at `snapshot`.
pub fn timestamp_signed(version: u64, expires: DateTime<Utc>, snapshot: &FileInfo) -> Value {
    json!({
        "_type": "timestamp",
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": format_expires(expires),
        "meta": {"snapshot.json": file_info_json(snapshot)},
    })
}

fn file_info_json(info: &FileInfo) -> Value {
    json!({"version": info.version, "length": info.length, "hashes": {"sha256": info.sha256}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_upload_rejected() {
        let result = validate_upload(&StoredRepository::default(), Vec::new(), &HeldKeys::default(), Utc::now());
        assert!(matches!(result, Err(UploadError::Empty)));
    }

    #[test]
    fn upload_without_root_rejected() {
        let targets = br#"{"signed":{"_type":"targets","spec_version":"1.0.31","version":1,"expires":"2099-01-01T00:00:00Z","targets":{}},"signatures":[]}"#;
        let result = validate_upload(&StoredRepository::default(), vec![("targets".into(), targets.to_vec())], &HeldKeys::default(), Utc::now());
        assert!(matches!(result, Err(UploadError::NoRoot)), "{result:?}");
    }
}
