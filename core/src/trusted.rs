//! The trusted metadata set of a TUF client: the verification steps of the client workflow
//! (TUF 1.0.34 sections 5.3 to 5.6), without I/O.
//!
//! A caller downloads files and hands their bytes to the `update_*` methods in workflow order:
//! root versions one at a time, then timestamp, snapshot, top-level targets and delegated
//! targets roles as the target search needs them. Each method accepts the file only if every
//! check of its step passes, so the set never contains metadata that failed verification. Expiry
//! is checked against one fixed update start time (5.1).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ring::digest::{digest, SHA256, SHA512};

use crate::index::{file_sha256, IndexError, TargetsIndex};
use crate::keys::PublicKey;
use crate::metadata::{format_expires, CheckedRoot, CheckedTargets, DelegatedRole, Document, Meta, MetaFile, MetadataError, RoleKeys, RoleType, TargetFile};
use crate::names::RoleName;
use crate::verify::{verify_threshold, ThresholdNotMet};

/// Error for a metadata file that failed verification.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{role}: {source}")]
    Metadata { role: String, #[source] source: MetadataError },

    #[error("{0}")]
    Threshold(#[from] ThresholdNotMet),

    #[error("{role}: version {new} is older than the trusted version {trusted} (rollback)")]
    Rollback { role: String, trusted: u64, new: u64 },

    #[error("{role}: expected version {expected}, got {got}")]
    VersionMismatch { role: String, expected: u64, got: u64 },

    #[error("{role}: expired at {expires} (freeze attack or stale metadata)")]
    Expired { role: String, expires: String },

    #[error("{role}: {detail} does not match what {referrer} lists (mix-and-match)")]
    MetaMismatch { role: String, referrer: &'static str, detail: &'static str },

    #[error("{role} is not listed in {referrer}")]
    NotListed { role: String, referrer: &'static str },

    #[error("{0} must be loaded before this step")]
    OutOfOrder(&'static str),

    #[error("{role}: not delegated by {delegator}")]
    NotDelegated { role: String, delegator: String },

    #[error("{role}: stored index: {source}")]
    Index { role: String, #[source] source: IndexError },
}

/// Result of a timestamp update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUpdate {
    /// A newer timestamp was accepted; snapshot must be refreshed.
    Updated,
    /// The timestamp has the trusted version: nothing changed, the update stops (5.4.3.1).
    Unchanged,
}

/// Verified metadata, in the order the workflow loads it.
#[derive(Debug, Clone)]
pub struct TrustedSet {
    root_document: Document,
    root: CheckedRoot,
    timestamp: Option<Document>,
    snapshot: Option<Document>,
    targets: BTreeMap<RoleName, (Document, CheckedTargets)>,
    /// Targets roles accepted through an index instead of in full.
    indexed: BTreeMap<RoleName, TargetsIndex>,
    /// For each loaded targets role, the anchor its delegated roles are verified against.
    identities: BTreeMap<RoleName, String>,
    now: DateTime<Utc>,
}

impl TrustedSet {
    /// Starts from a root obtained out of band. It must be signed by a threshold of its own
    /// root keys; its expiry is checked only after the root update (5.2, 5.3.10).
    pub fn new(root_bytes: Vec<u8>, now: DateTime<Utc>) -> Result<TrustedSet, VerifyError> {
        let root_document = parse(root_bytes, RoleType::Root, RoleName::ROOT)?;
        let root = checked_root(&root_document)?;
        verify_role(&root_document, &root, RoleName::ROOT, &format!("root version {} keys", root_document.version))?;
        Ok(TrustedSet {
            root_document,
            root,
            timestamp: None,
            snapshot: None,
            targets: BTreeMap::new(),
            indexed: BTreeMap::new(),
            identities: BTreeMap::new(),
            now,
        })
    }

    pub fn root(&self) -> &Document {
        &self.root_document
    }

    pub fn checked_root(&self) -> &CheckedRoot {
        &self.root
    }

    pub fn timestamp(&self) -> Option<&Document> {
        self.timestamp.as_ref()
    }

    pub fn snapshot(&self) -> Option<&Document> {
        self.snapshot.as_ref()
    }

    /// A targets role loaded in full. Roles accepted through an index are not here; see
    /// [`TrustedSet::find_in_role`].
    pub fn targets(&self, role: &RoleName) -> Option<&(Document, CheckedTargets)> {
        self.targets.get(role)
    }

    /// True when `role` was loaded, in full or through an index.
    pub fn is_loaded(&self, role: &RoleName) -> bool {
        self.targets.contains_key(role) || self.indexed.contains_key(role)
    }

    /// Looks `name` up in one loaded targets role. Returns `None` when the role is not loaded.
    pub fn find_in_role(&self, role: &RoleName, name: &str) -> Option<Result<Option<TargetFile>, VerifyError>> {
        if let Some((_, checked)) = self.targets.get(role) {
            return Some(Ok(checked.targets.targets.get(name).cloned()));
        }
        let index = self.indexed.get(role)?;
        Some(index.get(name).map_err(|source| VerifyError::Index { role: role.to_string(), source }))
    }

    /// TUF 5.3.4 to 5.3.9, 5.3.11: accepts root version N+1, signed by a threshold of version N's
    /// root keys and of its own.
    pub fn update_root(&mut self, bytes: Vec<u8>) -> Result<(), VerifyError> {
        if self.timestamp.is_some() {
            return Err(VerifyError::OutOfOrder("the root chain (before timestamp)"));
        }
        let document = parse(bytes, RoleType::Root, RoleName::ROOT)?;
        let new_root = checked_root(&document)?;
        let trusted_version = self.root_document.version;
        verify_role(&document, &self.root, RoleName::ROOT, &format!("root version {trusted_version} keys"))?;
        verify_role(&document, &new_root, RoleName::ROOT, &format!("root version {} keys", document.version))?;
        let expected = trusted_version + 1;
        if document.version != expected {
            return Err(VerifyError::VersionMismatch { role: RoleName::ROOT.to_owned(), expected, got: document.version });
        }
        self.root_document = document;
        self.root = new_root;
        Ok(())
    }

    /// Loads a previously trusted timestamp from local storage, for rollback checks only. It
    /// must verify under the current root, and its expiry does not matter. After a rotation of
    /// the timestamp keys it no longer verifies; the caller then drops it, which is the
    /// fast-forward attack recovery of TUF 5.3.11.
    pub fn load_local_timestamp(&mut self, bytes: Vec<u8>) -> Result<(), VerifyError> {
        let document = parse(bytes, RoleType::Timestamp, RoleName::TIMESTAMP)?;
        verify_role(&document, &self.root, RoleName::TIMESTAMP, "timestamp keys")?;
        self.timestamp = Some(document);
        Ok(())
    }

    /// TUF 5.3.10 and 5.4: checks the final root's expiry, then the timestamp's signatures,
    /// version and snapshot version against the trusted timestamp, and its expiry.
    pub fn update_timestamp(&mut self, bytes: Vec<u8>) -> Result<TimestampUpdate, VerifyError> {
        // 5.3.10: the final root must not be expired (freeze attack).
        self.check_unexpired(&self.root_document.clone(), RoleName::ROOT)?;

        let document = parse(bytes, RoleType::Timestamp, RoleName::TIMESTAMP)?;
        verify_role(&document, &self.root, RoleName::TIMESTAMP, &format!("root version {} timestamp keys", self.root_document.version))?;
        let new_meta = Meta::timestamp_snapshot(&document).map_err(|source| metadata_error(RoleName::TIMESTAMP, source))?;

        if let Some(trusted) = &self.timestamp {
            // 5.4.3: rollback of the timestamp itself.
            if document.version < trusted.version {
                return Err(VerifyError::Rollback { role: RoleName::TIMESTAMP.to_owned(), trusted: trusted.version, new: document.version });
            }
            if document.version == trusted.version {
                return Ok(TimestampUpdate::Unchanged);
            }
            // 5.4.3.2: rollback of the snapshot through a newer timestamp.
            let trusted_meta = Meta::timestamp_snapshot(trusted).map_err(|source| metadata_error(RoleName::TIMESTAMP, source))?;
            if new_meta.version < trusted_meta.version {
                return Err(VerifyError::Rollback { role: RoleName::SNAPSHOT.to_owned(), trusted: trusted_meta.version, new: new_meta.version });
            }
        }
        // 5.4.4: freeze attack.
        self.check_unexpired(&document, RoleName::TIMESTAMP)?;
        self.timestamp = Some(document);
        // A new snapshot follows; the old one is kept only as the rollback reference.
        Ok(TimestampUpdate::Updated)
    }

    /// Loads a previously trusted snapshot from local storage, for rollback checks only. Like the
    /// timestamp, it is dropped by the caller when it fails to verify under the current root.
    pub fn load_local_snapshot(&mut self, bytes: Vec<u8>) -> Result<(), VerifyError> {
        let document = parse(bytes, RoleType::Snapshot, RoleName::SNAPSHOT)?;
        verify_role(&document, &self.root, RoleName::SNAPSHOT, "snapshot keys")?;
        self.snapshot = Some(document);
        Ok(())
    }

    /// The snapshot entry of the trusted timestamp: version, and length and hashes if listed.
    pub fn snapshot_meta(&self) -> Result<MetaFile, VerifyError> {
        let timestamp = self.timestamp.as_ref().ok_or(VerifyError::OutOfOrder("timestamp"))?;
        Meta::timestamp_snapshot(timestamp).map_err(|source| metadata_error(RoleName::TIMESTAMP, source))
    }

    /// TUF 5.5: checks the snapshot against the timestamp's hashes and version, its signatures,
    /// rollback of every listed role against the trusted snapshot, and expiry.
    pub fn update_snapshot(&mut self, bytes: Vec<u8>) -> Result<(), VerifyError> {
        let expected = self.snapshot_meta()?;
        // 5.5.2: hashes and length before anything is parsed.
        check_file(&bytes, &expected, RoleName::SNAPSHOT, "timestamp")?;

        let document = parse(bytes, RoleType::Snapshot, RoleName::SNAPSHOT)?;
        verify_role(&document, &self.root, RoleName::SNAPSHOT, &format!("root version {} snapshot keys", self.root_document.version))?;
        if document.version != expected.version {
            return Err(VerifyError::VersionMismatch { role: RoleName::SNAPSHOT.to_owned(), expected: expected.version, got: document.version });
        }

        // 5.5.5: no role may disappear or go back in version.
        let new_meta: Meta = document.typed().map_err(|source| metadata_error(RoleName::SNAPSHOT, source))?;
        if let Some(trusted) = &self.snapshot {
            let trusted_meta: Meta = trusted.typed().map_err(|source| metadata_error(RoleName::SNAPSHOT, source))?;
            for (file, old) in &trusted_meta.meta {
                let role = file.trim_end_matches(".json").to_owned();
                let Some(new) = new_meta.meta.get(file) else {
                    return Err(VerifyError::NotListed { role, referrer: "the new snapshot (it was listed before)" });
                };
                if new.version < old.version {
                    return Err(VerifyError::Rollback { role, trusted: old.version, new: new.version });
                }
            }
        }
        // 5.5.6: freeze attack.
        self.check_unexpired(&document, RoleName::SNAPSHOT)?;
        self.snapshot = Some(document);
        Ok(())
    }

    /// Returns the snapshot entry of a targets role.
    pub fn role_meta(&self, role: &RoleName) -> Result<MetaFile, VerifyError> {
        let snapshot = self.snapshot.as_ref().ok_or(VerifyError::OutOfOrder("snapshot"))?;
        let meta: Meta = snapshot.typed().map_err(|source| metadata_error(RoleName::SNAPSHOT, source))?;
        meta.meta
            .get(&role.meta_file_name())
            .cloned()
            .ok_or_else(|| VerifyError::NotListed { role: role.to_string(), referrer: "snapshot" })
    }

    /// TUF 5.6 (and 5.6.7.2 for delegated roles): checks a targets role against the snapshot's
    /// version and hashes, and signatures against its delegator: root for `targets`, else the
    /// delegating role named by `delegator`.
    pub fn update_targets(&mut self, role: &RoleName, delegator: Option<&RoleName>, bytes: Vec<u8>) -> Result<(), VerifyError> {
        let expected = self.role_meta(role)?;
        check_file(&bytes, &expected, role.as_str(), "snapshot")?;

        let document = parse(bytes, RoleType::Targets, role.as_str())?;
        match delegator {
            None => {
                let signer = format!("root version {} targets keys", self.root_document.version);
                verify_role(&document, &self.root, RoleName::TARGETS, &signer)?;
            }
            Some(parent) => {
                let (keys, roles) = self.delegations_of(parent).ok_or(VerifyError::OutOfOrder("the delegating role"))?;
                let delegation = roles
                    .iter()
                    .find(|d| d.name == role.as_str())
                    .ok_or_else(|| VerifyError::NotDelegated { role: role.to_string(), delegator: parent.to_string() })?;
                let definition = RoleKeys { keyids: delegation.keyids.clone(), threshold: delegation.threshold };
                verify_threshold(&document, role.as_str(), &format!("{parent} delegation keys"), &definition, keys)?;
            }
        }
        if document.version != expected.version {
            return Err(VerifyError::VersionMismatch { role: role.to_string(), expected: expected.version, got: document.version });
        }
        self.check_unexpired(&document, role.as_str())?;
        let checked = CheckedTargets::from_document(&document).map_err(|source| metadata_error(role.as_str(), source))?;
        let anchor = self.anchor(delegator)?;
        self.identities.insert(role.clone(), identity(&anchor, &file_sha256(&document.bytes)));
        self.indexed.remove(role);
        self.targets.insert(role.clone(), (document, checked));
        Ok(())
    }

    /// Builds an index of a targets role that was loaded in full, for
    /// [`TrustedSet::update_targets_from_index`] in a later run.
    pub fn build_index(&self, role: &RoleName, delegator: Option<&RoleName>) -> Result<Vec<u8>, VerifyError> {
        let (document, checked) = self.targets.get(role).ok_or(VerifyError::OutOfOrder("the indexed role"))?;
        let anchor = self.anchor(delegator)?;
        TargetsIndex::build(role.as_str(), document, checked, &anchor).map_err(|source| VerifyError::Index { role: role.to_string(), source })
    }

    /// Accepts a targets role through an index built when the same file passed every check of
    /// [`TrustedSet::update_targets`]. `bytes` is the stored role file. The signatures are not
    /// checked again. Instead the index must name the same file hash and the same anchor: the
    /// current root for `targets`, the same delegating role file for a delegated role. The
    /// snapshot checks (length, hashes, version) and the expiry check run as for a full load.
    pub fn update_targets_from_index(&mut self, role: &RoleName, delegator: Option<&RoleName>, bytes: &[u8], index: TargetsIndex) -> Result<(), VerifyError> {
        let stale = |what| VerifyError::Index { role: role.to_string(), source: IndexError::Stale(what) };
        let expected = self.role_meta(role)?;
        check_file(bytes, &expected, role.as_str(), "snapshot")?;
        if index.role() != role.as_str() {
            return Err(stale("another role"));
        }
        let hash = file_sha256(bytes);
        if index.file_sha256() != hash {
            return Err(stale("another file"));
        }
        let anchor = self.anchor(delegator)?;
        if index.anchor() != anchor {
            return Err(stale("other keys"));
        }
        if index.version() != expected.version {
            return Err(VerifyError::VersionMismatch { role: role.to_string(), expected: expected.version, got: index.version() });
        }
        if index.expires() <= self.now {
            return Err(VerifyError::Expired { role: role.to_string(), expires: format_expires(index.expires()) });
        }
        self.identities.insert(role.clone(), identity(&anchor, &hash));
        self.targets.remove(role);
        self.indexed.insert(role.clone(), index);
        Ok(())
    }

    /// Returns the delegations of a loaded targets role, in priority order.
    pub fn delegations(&self, role: &RoleName) -> Vec<DelegatedRole> {
        self.delegations_of(role).map(|(_, roles)| roles.to_vec()).unwrap_or_default()
    }

    /// Delegation keys and roles of a loaded targets role.
    fn delegations_of(&self, role: &RoleName) -> Option<(&BTreeMap<String, PublicKey>, &[DelegatedRole])> {
        if let Some((_, checked)) = self.targets.get(role) {
            return Some((&checked.delegation_keys, &checked.delegated_roles));
        }
        let index = self.indexed.get(role)?;
        Some((index.delegation_keys(), index.delegated_roles()))
    }

    /// Returns what the signatures of a targets role delegated by `delegator` are checked
    /// against, as a digest: the trusted root file for the top-level role, else the delegating
    /// role's identity (its own anchor and file hash). Equal anchors mean equal keys and thresholds.
    fn anchor(&self, delegator: Option<&RoleName>) -> Result<String, VerifyError> {
        match delegator {
            None => Ok(file_sha256(&self.root_document.bytes)),
            Some(parent) => self.identities.get(parent).cloned().ok_or(VerifyError::OutOfOrder("the delegating role")),
        }
    }

    fn check_unexpired(&self, document: &Document, role: &str) -> Result<(), VerifyError> {
        if document.is_expired(self.now) {
            return Err(VerifyError::Expired { role: role.to_owned(), expires: format_expires(document.expires) });
        }
        Ok(())
    }
}

/// Combines the anchor and the file hash of a loaded targets role into one digest, its identity.
fn identity(anchor: &str, file_sha256_hex: &str) -> String {
    file_sha256(format!("{anchor}\n{file_sha256_hex}").as_bytes())
}

fn parse(bytes: Vec<u8>, role_type: RoleType, role: &str) -> Result<Document, VerifyError> {
    Document::parse(bytes, role_type).map_err(|source| metadata_error(role, source))
}

fn checked_root(document: &Document) -> Result<CheckedRoot, VerifyError> {
    CheckedRoot::from_document(document).map_err(|source| metadata_error(RoleName::ROOT, source))
}

fn metadata_error(role: &str, source: MetadataError) -> VerifyError {
    VerifyError::Metadata { role: role.to_owned(), source }
}

fn verify_role(document: &Document, root: &CheckedRoot, role: &str, signer: &str) -> Result<(), VerifyError> {
    let definition = root.role(role).ok_or_else(|| metadata_error(RoleName::ROOT, MetadataError::MissingRole("role")))?;
    Ok(verify_threshold(document, role, signer, definition, &root.keys)?)
}

/// Checks `bytes` against the length and hashes a referrer lists (5.5.2, 5.6.2).
fn check_file(bytes: &[u8], expected: &MetaFile, role: &str, referrer: &'static str) -> Result<(), VerifyError> {
    let mismatch = |detail| VerifyError::MetaMismatch { role: role.to_owned(), referrer, detail };
    if expected.length.is_some_and(|length| length != bytes.len() as u64) {
        return Err(mismatch("length"));
    }
    if let Some(hashes) = &expected.hashes {
        for (algorithm, expected_hex) in hashes {
            let actual = match algorithm.as_str() {
                "sha256" => hex::encode(digest(&SHA256, bytes)),
                "sha512" => hex::encode(digest(&SHA512, bytes)),
                // Unknown algorithms cannot be checked; the known ones still must match.
                _ => continue,
            };
            if !actual.eq_ignore_ascii_case(expected_hex) {
                return Err(mismatch("hash"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::key_id;
    use crate::signing::sign_metadata;
    use crate::testing::*;
    use crate::upload::{snapshot_signed, timestamp_signed, FileInfo};
    use chrono::Duration;
    use serde_json::{json, Value};

    /// Builds a set with root v1, timestamp, snapshot and targets at the given versions.
    fn loaded(keys: &Keys, version: u64) -> (TrustedSet, Vec<u8>) {
        let mut set = TrustedSet::new(signed(&root(1, keys, later(365)), &keys.root), Utc::now()).unwrap();
        let targets_bytes = signed(&targets(version), &keys.targets);
        let meta = BTreeMap::from([(RoleName::targets(), info(&targets_bytes, version))]);
        let snapshot_bytes = signed(&snapshot_signed(version, later(7), &meta), &keys.snapshot);
        let timestamp_bytes = signed(&timestamp_signed(version, later(1), &info(&snapshot_bytes, version)), &keys.timestamp);
        assert_eq!(set.update_timestamp(timestamp_bytes).unwrap(), TimestampUpdate::Updated);
        set.update_snapshot(snapshot_bytes).unwrap();
        set.update_targets(&RoleName::targets(), None, targets_bytes.clone()).unwrap();
        (set, targets_bytes)
    }

    #[test]
    fn full_update_succeeds() {
        let keys = keys();
        let (set, _) = loaded(&keys, 1);
        assert!(set.targets(&RoleName::targets()).is_some());
    }

    #[test]
    fn root_rotation_needs_both_thresholds_and_next_version() {
        let keys = keys();
        let mut set = TrustedSet::new(signed(&root(1, &keys, later(365)), &keys.root), Utc::now()).unwrap();
        let new_keys = Keys { root: key(), ..self::keys() };

        let only_new = signed(&root(2, &new_keys, later(365)), &new_keys.root);
        assert!(matches!(set.update_root(only_new), Err(VerifyError::Threshold(_))));

        let only_old = signed(&root(2, &new_keys, later(365)), &keys.root);
        assert!(matches!(set.update_root(only_old), Err(VerifyError::Threshold(_))));

        let skipped = sign_metadata(&root(3, &new_keys, later(365)), &[&keys.root, &new_keys.root]).unwrap();
        assert!(matches!(set.update_root(skipped), Err(VerifyError::VersionMismatch { .. })));

        let both = sign_metadata(&root(2, &new_keys, later(365)), &[&keys.root, &new_keys.root]).unwrap();
        set.update_root(both).unwrap();
        assert_eq!(set.root().version, 2);
    }

    #[test]
    fn expired_final_root_rejected() {
        let keys = keys();
        let mut set = TrustedSet::new(signed(&root(1, &keys, later(-1)), &keys.root), Utc::now()).unwrap();
        let timestamp = signed(&timestamp_signed(1, later(1), &FileInfo { version: 1, length: 1, sha256: "00".repeat(32) }), &keys.timestamp);
        assert!(matches!(set.update_timestamp(timestamp), Err(VerifyError::Expired { role, .. }) if role == "root"));
    }

    #[test]
    fn timestamp_rollback_and_freeze_rejected() {
        let keys = keys();
        let (mut set, _) = loaded(&keys, 5);
        let snapshot = FileInfo { version: 5, length: 1, sha256: "00".repeat(32) };

        let older = signed(&timestamp_signed(4, later(1), &snapshot), &keys.timestamp);
        assert!(matches!(set.update_timestamp(older), Err(VerifyError::Rollback { .. })));

        let same = signed(&timestamp_signed(5, later(1), &snapshot), &keys.timestamp);
        assert_eq!(set.update_timestamp(same).unwrap(), TimestampUpdate::Unchanged);

        let snapshot_rollback = signed(&timestamp_signed(6, later(1), &FileInfo { version: 4, ..snapshot.clone() }), &keys.timestamp);
        assert!(matches!(set.update_timestamp(snapshot_rollback), Err(VerifyError::Rollback { role, .. }) if role == "snapshot"));

        let expired = signed(&timestamp_signed(6, Utc::now() - Duration::hours(1), &snapshot), &keys.timestamp);
        assert!(matches!(set.update_timestamp(expired), Err(VerifyError::Expired { .. })));

        let wrong_key = signed(&timestamp_signed(6, later(1), &snapshot), &keys.snapshot);
        assert!(matches!(set.update_timestamp(wrong_key), Err(VerifyError::Threshold(_))));
    }

    #[test]
    fn snapshot_checked_against_timestamp() {
        let keys = keys();
        let mut set = TrustedSet::new(signed(&root(1, &keys, later(365)), &keys.root), Utc::now()).unwrap();
        let meta = BTreeMap::from([(RoleName::targets(), FileInfo { version: 1, length: 1, sha256: "00".repeat(32) })]);
        let snapshot = signed(&snapshot_signed(1, later(7), &meta), &keys.snapshot);
        let other = signed(&snapshot_signed(1, later(8), &meta), &keys.snapshot);
        let timestamp = signed(&timestamp_signed(1, later(1), &info(&snapshot, 1)), &keys.timestamp);
        set.update_timestamp(timestamp).unwrap();

        assert!(matches!(set.update_snapshot(other), Err(VerifyError::MetaMismatch { .. })));
        set.update_snapshot(snapshot).unwrap();
    }

    #[test]
    fn snapshot_rollback_of_listed_role_rejected() {
        let keys = keys();
        let (mut set, _) = loaded(&keys, 3);
        // A newer snapshot that lists targets at an older version.
        let meta = BTreeMap::from([(RoleName::targets(), FileInfo { version: 2, length: 1, sha256: "00".repeat(32) })]);
        let snapshot = signed(&snapshot_signed(4, later(7), &meta), &keys.snapshot);
        let timestamp = signed(&timestamp_signed(4, later(1), &info(&snapshot, 4)), &keys.timestamp);
        set.update_timestamp(timestamp).unwrap();
        assert!(matches!(set.update_snapshot(snapshot), Err(VerifyError::Rollback { role, .. }) if role == "targets"));
    }

    #[test]
    fn targets_checked_against_snapshot_and_root() {
        let keys = keys();
        let mut set = TrustedSet::new(signed(&root(1, &keys, later(365)), &keys.root), Utc::now()).unwrap();
        let good = signed(&targets(1), &keys.targets);
        let meta = BTreeMap::from([(RoleName::targets(), FileInfo { version: 1, length: good.len() as u64, sha256: info(&good, 1).sha256 })]);
        let snapshot = signed(&snapshot_signed(1, later(7), &meta), &keys.snapshot);
        set.update_timestamp(signed(&timestamp_signed(1, later(1), &info(&snapshot, 1)), &keys.timestamp)).unwrap();
        set.update_snapshot(snapshot).unwrap();

        let tampered = signed(&targets(1), &keys.root);
        assert!(matches!(set.update_targets(&RoleName::targets(), None, tampered), Err(VerifyError::MetaMismatch { .. })));
        set.update_targets(&RoleName::targets(), None, good).unwrap();
    }

    #[test]
    fn targets_signed_by_wrong_key_rejected() {
        let keys = keys();
        let mut set = TrustedSet::new(signed(&root(1, &keys, later(365)), &keys.root), Utc::now()).unwrap();
        let bad = signed(&targets(1), &keys.snapshot);
        // The snapshot lists no hashes, so only the signature check can reject the file.
        let meta = json!({"_type": "snapshot", "spec_version": "1.0.34", "version": 1, "expires": format_expires(later(7)),
            "meta": {"targets.json": {"version": 1}}});
        let snapshot = signed(&meta, &keys.snapshot);
        set.update_timestamp(signed(&timestamp_signed(1, later(1), &info(&snapshot, 1)), &keys.timestamp)).unwrap();
        set.update_snapshot(snapshot).unwrap();
        assert!(matches!(set.update_targets(&RoleName::targets(), None, bad), Err(VerifyError::Threshold(_))));
    }

    #[test]
    fn delegated_role_verified_with_delegator_keys() {
        let keys = keys();
        let delegate = key();
        let mut set = TrustedSet::new(signed(&root(1, &keys, later(365)), &keys.root), Utc::now()).unwrap();
        let mut top = targets(1);
        top["delegations"] = json!({"keys": {delegate.key_id(): delegate.tuf_key()},
            "roles": [{"name": "releases", "keyids": [delegate.key_id()], "threshold": 1, "paths": ["*"], "terminating": false}]});
        let top = signed(&top, &keys.targets);
        let releases = signed(&targets(1), &delegate);
        let forged = signed(&targets(1), &keys.targets);
        let releases_role = RoleName::parse("releases").unwrap();
        let meta = json!({"_type": "snapshot", "spec_version": "1.0.34", "version": 1, "expires": format_expires(later(7)),
            "meta": {"targets.json": {"version": 1}, "releases.json": {"version": 1}}});
        let snapshot = signed(&meta, &keys.snapshot);
        set.update_timestamp(signed(&timestamp_signed(1, later(1), &info(&snapshot, 1)), &keys.timestamp)).unwrap();
        set.update_snapshot(snapshot).unwrap();
        set.update_targets(&RoleName::targets(), None, top).unwrap();

        assert!(matches!(set.update_targets(&releases_role, Some(&RoleName::targets()), forged), Err(VerifyError::Threshold(_))));
        set.update_targets(&releases_role, Some(&RoleName::targets()), releases).unwrap();
        assert_eq!(set.delegations(&RoleName::targets()).len(), 1);
        assert!(key_id(delegate.tuf_key()).is_ok());
    }

    /// Builds a set with root, timestamp and a snapshot listing `meta`, as of `now`.
    fn with_snapshot(keys: &Keys, root_value: &Value, meta: Value, now: DateTime<Utc>) -> TrustedSet {
        let mut set = TrustedSet::new(signed(root_value, &keys.root), now).unwrap();
        let snapshot = json!({"_type": "snapshot", "spec_version": "1.0.34", "version": 1, "expires": format_expires(later(30)), "meta": meta});
        let snapshot = signed(&snapshot, &keys.snapshot);
        set.update_timestamp(signed(&timestamp_signed(1, later(30), &info(&snapshot, 1)), &keys.timestamp)).unwrap();
        set.update_snapshot(snapshot).unwrap();
        set
    }

    /// Verifies `targets_bytes` in full under `root_value` and returns its index.
    fn index_of(keys: &Keys, root_value: &Value, targets_bytes: &[u8]) -> Vec<u8> {
        let mut set = with_snapshot(keys, root_value, json!({"targets.json": {"version": 1}}), Utc::now());
        set.update_targets(&RoleName::targets(), None, targets_bytes.to_vec()).unwrap();
        set.build_index(&RoleName::targets(), None).unwrap()
    }

    fn load_index(set: &mut TrustedSet, bytes: &[u8], index: Vec<u8>) -> Result<(), VerifyError> {
        set.update_targets_from_index(&RoleName::targets(), None, bytes, TargetsIndex::parse(index).unwrap())
    }

    #[test]
    fn index_serves_lookups_of_an_unchanged_role() {
        let keys = keys();
        let root_value = root(1, &keys, later(365));
        let bytes = signed(&targets_with(&["latest", "v1"]), &keys.targets);
        let index = index_of(&keys, &root_value, &bytes);

        let mut set = with_snapshot(&keys, &root_value, json!({"targets.json": {"version": 1, "length": bytes.len(), "hashes": {"sha256": file_sha256(&bytes)}}}), Utc::now());
        load_index(&mut set, &bytes, index).unwrap();
        assert!(set.is_loaded(&RoleName::targets()));
        assert!(set.find_in_role(&RoleName::targets(), "v1").unwrap().unwrap().is_some());
        assert!(set.find_in_role(&RoleName::targets(), "v2").unwrap().unwrap().is_none());
    }

    #[test]
    fn index_refused_after_root_changes() {
        let keys = keys();
        let bytes = signed(&targets_with(&["latest"]), &keys.targets);
        let index = index_of(&keys, &root(1, &keys, later(365)), &bytes);

        // Root version 2 could list other targets keys; the role must be verified again.
        let mut set = with_snapshot(&keys, &root(2, &keys, later(365)), json!({"targets.json": {"version": 1}}), Utc::now());
        let result = load_index(&mut set, &bytes, index);
        assert!(matches!(result, Err(VerifyError::Index { source: IndexError::Stale(_), .. })), "{result:?}");
    }

    #[test]
    fn index_refused_for_another_file() {
        let keys = keys();
        let root_value = root(1, &keys, later(365));
        let bytes = signed(&targets_with(&["latest"]), &keys.targets);
        let index = index_of(&keys, &root_value, &bytes);

        // Same version, other content, and a snapshot that lists no hashes: only the index's own
        // file hash distinguishes them.
        let other = signed(&targets_with(&["latest", "forged"]), &keys.timestamp);
        let mut set = with_snapshot(&keys, &root_value, json!({"targets.json": {"version": 1}}), Utc::now());
        let result = load_index(&mut set, &other, index);
        assert!(matches!(result, Err(VerifyError::Index { source: IndexError::Stale(_), .. })), "{result:?}");
    }

    #[test]
    fn index_refused_when_snapshot_lists_another_version() {
        let keys = keys();
        let root_value = root(1, &keys, later(365));
        let bytes = signed(&targets_with(&["latest"]), &keys.targets);
        let index = index_of(&keys, &root_value, &bytes);

        let mut set = with_snapshot(&keys, &root_value, json!({"targets.json": {"version": 2}}), Utc::now());
        let result = load_index(&mut set, &bytes, index);
        assert!(matches!(result, Err(VerifyError::VersionMismatch { expected: 2, got: 1, .. })), "{result:?}");
    }

    #[test]
    fn index_refused_after_the_role_expires() {
        let keys = keys();
        let root_value = root(1, &keys, later(365));
        let mut value = targets_with(&["latest"]);
        value["expires"] = json!(format_expires(later(2)));
        let bytes = signed(&value, &keys.targets);
        let index = index_of(&keys, &root_value, &bytes);

        let mut set = with_snapshot(&keys, &root_value, json!({"targets.json": {"version": 1}}), Utc::now() + Duration::days(3));
        let result = load_index(&mut set, &bytes, index);
        assert!(matches!(result, Err(VerifyError::Expired { .. })), "{result:?}");
    }

    #[test]
    fn delegated_role_verifies_under_an_indexed_delegator() {
        let keys = keys();
        let delegate = key();
        let root_value = root(1, &keys, later(365));
        let mut top = targets_with(&["top"]);
        top["delegations"] = json!({"keys": {delegate.key_id(): delegate.tuf_key()},
            "roles": [{"name": "releases", "keyids": [delegate.key_id()], "threshold": 1, "paths": ["v*"], "terminating": false}]});
        let top = signed(&top, &keys.targets);
        let releases = signed(&targets_with(&["v1"]), &delegate);
        let releases_role = RoleName::parse("releases").unwrap();
        let meta = json!({"targets.json": {"version": 1}, "releases.json": {"version": 1}});

        let mut full = with_snapshot(&keys, &root_value, meta.clone(), Utc::now());
        full.update_targets(&RoleName::targets(), None, top.clone()).unwrap();
        full.update_targets(&releases_role, Some(&RoleName::targets()), releases.clone()).unwrap();
        let top_index = full.build_index(&RoleName::targets(), None).unwrap();
        let releases_index = full.build_index(&releases_role, Some(&RoleName::targets())).unwrap();

        let mut set = with_snapshot(&keys, &root_value, meta, Utc::now());
        load_index(&mut set, &top, top_index).unwrap();
        let forged = signed(&targets_with(&["v1"]), &keys.targets);
        assert!(matches!(set.update_targets(&releases_role, Some(&RoleName::targets()), forged), Err(VerifyError::Threshold(_))));
        set.update_targets_from_index(&releases_role, Some(&RoleName::targets()), &releases, TargetsIndex::parse(releases_index).unwrap()).unwrap();
        let step = crate::search::TargetSearch::new("v1").next(&set).unwrap();
        assert!(matches!(step, crate::search::SearchStep::Found { role, .. } if role == releases_role));
    }
}
