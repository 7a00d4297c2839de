//! Signed TUF metadata documents: the exact bytes received, the raw `signed` value, its
//! canonical form, and typed views of the four role types.
//!
//! A [`Document`] keeps the raw JSON next to the typed fields, so signatures are checked over
//! what was signed and stored bytes are served unchanged.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{parse_strict, to_canonical, CanonicalError};
use crate::keys::{check_key_id, KeyError, PublicKey};
use crate::names::{NameError, RoleName};

/// The TUF specification major version this implementation reads and writes.
pub const SPEC_MAJOR: &str = "1";

/// The `spec_version` written into metadata the server signs.
pub const SPEC_VERSION: &str = "1.0.34";

/// The four kinds of TUF metadata; delegated roles are `Targets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleType {
    Root,
    Targets,
    Snapshot,
    Timestamp,
}

impl RoleType {
    /// Returns the `_type` value of this role type.
    pub fn type_name(self) -> &'static str {
        match self {
            RoleType::Root => "root",
            RoleType::Targets => "targets",
            RoleType::Snapshot => "snapshot",
            RoleType::Timestamp => "timestamp",
        }
    }

    /// Returns the role type of a role name. Delegated roles are targets roles.
    pub fn of(role: &RoleName) -> RoleType {
        match role.as_str() {
            RoleName::ROOT => RoleType::Root,
            RoleName::SNAPSHOT => RoleType::Snapshot,
            RoleName::TIMESTAMP => RoleType::Timestamp,
            _ => RoleType::Targets,
        }
    }
}

/// Error for a malformed metadata document.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error(transparent)]
    Canonical(#[from] CanonicalError),

    #[error("metadata must be a JSON object with an object \"signed\" and an array \"signatures\" of {{\"keyid\", \"sig\"}} objects with hex strings")]
    Envelope,

    #[error("_type is {found:?}, expected {expected:?}")]
    WrongType { expected: &'static str, found: String },

    #[error("spec_version {0:?} is not supported; this server reads TUF specification 1.x (for example \"1.0.34\")")]
    UnsupportedSpecVersion(String),

    #[error("version must be an integer of at least 1")]
    InvalidVersion,

    #[error("expires {0:?} is not in the form YYYY-MM-DDTHH:MM:SSZ (UTC, no fractional seconds)")]
    InvalidExpires(String),

    #[error("invalid field: {0}")]
    Schema(String),

    #[error("key {key_id}: {source}")]
    Key { key_id: String, #[source] source: KeyError },

    #[error("role {role:?} lists key id {key_id} that is not in \"keys\"")]
    UnknownKeyId { role: String, key_id: String },

    #[error("role {role:?} lists key id {key_id} more than once")]
    DuplicateKeyId { role: String, key_id: String },

    #[error("role {role:?} has threshold 0; a threshold must be at least 1")]
    ZeroThreshold { role: String },

    #[error("root does not define the {0} role; root must define root, targets, snapshot and timestamp")]
    MissingRole(&'static str),

    #[error("delegated role name: {0}")]
    DelegatedName(#[from] NameError),

    #[error("delegation {0:?} is listed more than once")]
    DuplicateDelegation(String),

    #[error("delegation {0:?} must name a delegated role, not a top-level role")]
    TopLevelDelegation(String),

    #[error("delegation {0:?} needs \"paths\" or \"path_hash_prefixes\", and \"terminating\"")]
    DelegationPaths(String),

    #[error("delegations with succinct_roles (TAP 15) are not supported, because tough clients cannot read them; list the roles explicitly")]
    SuccinctRoles,

    #[error("target {0:?} has no sha256 hash; every target needs one")]
    TargetWithoutSha256(String),

    #[error("timestamp meta must contain exactly one entry, \"snapshot.json\"")]
    TimestampMeta,
}

/// One entry of the `signatures` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub key_id: String,
    pub sig: Vec<u8>,
}

/// A signed metadata file as received or as signed by the server.
#[derive(Debug, Clone)]
pub struct Document {
    /// The exact bytes, as stored and served.
    pub bytes: Vec<u8>,
    /// Hex SHA-256 of `bytes`.
    pub sha256: String,
    /// The raw `signed` value, unknown fields included.
    pub signed: Value,
    /// Canonical JSON of `signed`: the message every signature covers.
    pub signed_canonical: Vec<u8>,
    pub signatures: Vec<Signature>,
    pub role_type: RoleType,
    pub version: u64,
    pub expires: DateTime<Utc>,
}

impl Document {
    /// Parses a signed document and checks its common fields: envelope, `_type`,
    /// `spec_version` major version, `version` and the `expires` format.
    pub fn parse(bytes: Vec<u8>, expected: RoleType) -> Result<Document, MetadataError> {
        let mut value = parse_strict(&bytes)?;
        let signatures = parse_signatures(value.get("signatures"))?;
        // Taken out of the envelope rather than cloned: targets roles can be megabytes.
        let signed = value.get_mut("signed").filter(|v| v.is_object()).map(Value::take).ok_or(MetadataError::Envelope)?;
        let signed_canonical = to_canonical(&signed)?;

        let found = signed.get("_type").and_then(Value::as_str).unwrap_or_default();
        if found != expected.type_name() {
            return Err(MetadataError::WrongType { expected: expected.type_name(), found: found.to_owned() });
        }

        let spec_version = signed.get("spec_version").and_then(Value::as_str).unwrap_or_default();
        if !is_supported_spec_version(spec_version) {
            return Err(MetadataError::UnsupportedSpecVersion(spec_version.to_owned()));
        }

        let version = signed.get("version").and_then(Value::as_u64).filter(|v| *v >= 1);
        let version = version.ok_or(MetadataError::InvalidVersion)?;
        // Versions are stored as PostgreSQL bigint.
        if version > i64::MAX as u64 {
            return Err(MetadataError::InvalidVersion);
        }

        let expires_text = signed.get("expires").and_then(Value::as_str).unwrap_or_default();
        let expires = parse_expires(expires_text)?;

        let sha256 = hex::encode(digest(&SHA256, &bytes));
        Ok(Document { bytes, sha256, signed, signed_canonical, signatures, role_type: expected, version, expires })
    }

    /// Deserializes the typed view of `signed`. It is read from the bytes, which is faster than
    /// from the value tree for large targets roles; [`Document::parse`] already rejected
    /// duplicate keys, so both give the same result.
    pub fn typed<T: for<'de> Deserialize<'de>>(&self) -> Result<T, MetadataError> {
        #[derive(Deserialize)]
        struct Envelope<T> {
            signed: T,
        }
        serde_json::from_slice::<Envelope<T>>(&self.bytes)
            .map(|envelope| envelope.signed)
            .map_err(|e| MetadataError::Schema(e.to_string()))
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires <= now
    }
}

fn parse_signatures(value: Option<&Value>) -> Result<Vec<Signature>, MetadataError> {
    let items = value.and_then(Value::as_array).ok_or(MetadataError::Envelope)?;
    let mut signatures = Vec::with_capacity(items.len());
    for item in items {
        let key_id = item.get("keyid").and_then(Value::as_str).ok_or(MetadataError::Envelope)?;
        let sig = item.get("sig").and_then(Value::as_str).ok_or(MetadataError::Envelope)?;
        let sig = hex::decode(sig).map_err(|_| MetadataError::Envelope)?;
        signatures.push(Signature { key_id: key_id.to_owned(), sig });
    }
    Ok(signatures)
}

fn is_supported_spec_version(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit());
    (2..=3).contains(&parts.len()) && parts.iter().all(numeric) && parts[0] == SPEC_MAJOR
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ`, the only `expires` form TUF 1.0 allows.
pub fn parse_expires(text: &str) -> Result<DateTime<Utc>, MetadataError> {
    let invalid = || MetadataError::InvalidExpires(text.chars().take(64).collect());
    if text.len() != 20 {
        return Err(invalid());
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ").map_err(|_| invalid())?;
    let parsed = naive.and_utc();
    if format_expires(parsed) != text {
        return Err(invalid());
    }
    Ok(parsed)
}

/// Formats a time the way TUF 1.0 writes `expires`: whole seconds, UTC, `Z` suffix.
pub fn format_expires(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Key ids and threshold of one role.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RoleKeys {
    pub keyids: Vec<String>,
    pub threshold: u64,
}

/// Typed view of `root.signed`.
#[derive(Debug, Clone, Deserialize)]
pub struct Root {
    pub version: u64,
    #[serde(default)]
    pub consistent_snapshot: bool,
    pub keys: BTreeMap<String, Value>,
    pub roles: BTreeMap<String, RoleKeys>,
}

/// A root after its keys and role definitions were checked.
#[derive(Debug, Clone)]
pub struct CheckedRoot {
    pub root: Root,
    pub keys: BTreeMap<String, PublicKey>,
}

impl CheckedRoot {
    /// Checks key objects, key ids and the four role definitions of a root document.
    pub fn from_document(document: &Document) -> Result<CheckedRoot, MetadataError> {
        let root: Root = document.typed()?;
        let keys = parse_keys(&root.keys)?;
        for role in [RoleName::ROOT, RoleName::TARGETS, RoleName::SNAPSHOT, RoleName::TIMESTAMP] {
            let definition = root.roles.get(role).ok_or(MetadataError::MissingRole(role))?;
            check_role_keys(role, definition, &keys)?;
        }
        Ok(CheckedRoot { root, keys })
    }

    /// Returns the key ids and threshold that root defines for a top-level role.
    pub fn role(&self, role: &str) -> Option<&RoleKeys> {
        self.root.roles.get(role)
    }
}

/// Parses a `keys` object, checking every key id against its key.
pub fn parse_keys(keys: &BTreeMap<String, Value>) -> Result<BTreeMap<String, PublicKey>, MetadataError> {
    let mut parsed = BTreeMap::new();
    for (key_id, value) in keys {
        let wrap = |source| MetadataError::Key { key_id: key_id.clone(), source };
        check_key_id(key_id, value).map_err(wrap)?;
        parsed.insert(key_id.clone(), PublicKey::from_tuf(value).map_err(wrap)?);
    }
    Ok(parsed)
}

fn check_role_keys(role: &str, definition: &RoleKeys, keys: &BTreeMap<String, PublicKey>) -> Result<(), MetadataError> {
    if definition.threshold == 0 {
        return Err(MetadataError::ZeroThreshold { role: role.to_owned() });
    }
    let mut seen = std::collections::BTreeSet::new();
    for key_id in &definition.keyids {
        if !keys.contains_key(key_id) {
            return Err(MetadataError::UnknownKeyId { role: role.to_owned(), key_id: key_id.clone() });
        }
        if !seen.insert(key_id) {
            return Err(MetadataError::DuplicateKeyId { role: role.to_owned(), key_id: key_id.clone() });
        }
    }
    Ok(())
}

/// One target entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TargetFile {
    pub length: u64,
    pub hashes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
}

/// One delegated role in `delegations.roles`.
#[derive(Debug, Clone, Deserialize)]
pub struct DelegatedRole {
    pub name: String,
    pub keyids: Vec<String>,
    pub threshold: u64,
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    #[serde(default)]
    pub path_hash_prefixes: Option<Vec<String>>,
    #[serde(default)]
    pub terminating: Option<bool>,
}

impl DelegatedRole {
    /// TUF 5.6.7.1: whether `target` falls within this delegation. In `paths`, `*` and `?` match
    /// within one path segment only.
    pub fn matches(&self, target: &str) -> bool {
        if let Some(paths) = &self.paths {
            return paths.iter().any(|pattern| glob_matches(pattern, target));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let hash = hex::encode(digest(&SHA256, target.as_bytes()));
            return prefixes.iter().any(|prefix| hash.starts_with(prefix.as_str()));
        }
        false
    }
}

/// Shell-style glob where `*` and `?` never match `/`, applied segment by segment.
pub fn glob_matches(pattern: &str, target: &str) -> bool {
    let pattern_segments: Vec<&str> = pattern.split('/').collect();
    let target_segments: Vec<&str> = target.split('/').collect();
    pattern_segments.len() == target_segments.len()
        && pattern_segments.iter().zip(&target_segments).all(|(p, t)| segment_matches(p.as_bytes(), t.as_bytes()))
}

fn segment_matches(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative wildcard matching with one backtrack point: linear in practice, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// `delegations` of a targets role.
#[derive(Debug, Clone, Deserialize)]
pub struct Delegations {
    pub keys: BTreeMap<String, Value>,
    #[serde(default)]
    pub roles: Option<Vec<DelegatedRole>>,
    #[serde(default)]
    pub succinct_roles: Option<Value>,
}

/// Typed view of a targets role (top-level or delegated).
#[derive(Debug, Clone, Deserialize)]
pub struct Targets {
    pub version: u64,
    pub targets: BTreeMap<String, TargetFile>,
    #[serde(default)]
    pub delegations: Option<Delegations>,
}

/// A targets role after its delegations and targets were checked.
#[derive(Debug, Clone)]
pub struct CheckedTargets {
    pub targets: Targets,
    pub delegation_keys: BTreeMap<String, PublicKey>,
    pub delegated_roles: Vec<DelegatedRole>,
}

impl CheckedTargets {
    /// Checks target entries, delegation keys, key ids and delegated role definitions.
    pub fn from_document(document: &Document) -> Result<CheckedTargets, MetadataError> {
        let targets: Targets = document.typed()?;
        for (name, target) in &targets.targets {
            if !target.hashes.contains_key("sha256") {
                return Err(MetadataError::TargetWithoutSha256(name.clone()));
            }
        }

        let (delegation_keys, delegated_roles) = check_delegations(targets.delegations.as_ref())?;
        Ok(CheckedTargets { targets, delegation_keys, delegated_roles })
    }
}

/// Checks delegation keys, key ids and delegated role definitions, returning the keys and the
/// roles in priority order.
pub fn check_delegations(delegations: Option<&Delegations>) -> Result<(BTreeMap<String, PublicKey>, Vec<DelegatedRole>), MetadataError> {
    let mut delegation_keys = BTreeMap::new();
    let mut delegated_roles = Vec::new();
    if let Some(delegations) = delegations {
        if delegations.succinct_roles.is_some() {
            return Err(MetadataError::SuccinctRoles);
        }
        delegation_keys = parse_keys(&delegations.keys)?;
        let mut names = std::collections::BTreeSet::new();
        for role in delegations.roles.iter().flatten() {
            let name = RoleName::parse(&role.name)?;
            if !name.is_delegated() {
                return Err(MetadataError::TopLevelDelegation(role.name.clone()));
            }
            if !names.insert(role.name.clone()) {
                return Err(MetadataError::DuplicateDelegation(role.name.clone()));
            }
            let has_paths = role.paths.is_some() != role.path_hash_prefixes.is_some();
            if !has_paths || role.terminating.is_none() {
                return Err(MetadataError::DelegationPaths(role.name.clone()));
            }
            let definition = RoleKeys { keyids: role.keyids.clone(), threshold: role.threshold };
            check_role_keys(&role.name, &definition, &delegation_keys)?;
            delegated_roles.push(role.clone());
        }
    }
    Ok((delegation_keys, delegated_roles))
}

/// One entry of snapshot or timestamp `meta`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MetaFile {
    pub version: u64,
    #[serde(default)]
    pub length: Option<u64>,
    #[serde(default)]
    pub hashes: Option<BTreeMap<String, String>>,
}

/// Typed view of snapshot or timestamp `signed`.
#[derive(Debug, Clone, Deserialize)]
pub struct Meta {
    pub meta: BTreeMap<String, MetaFile>,
}

impl Meta {
    /// Reads timestamp `meta`, which must list `snapshot.json` and nothing else.
    pub fn timestamp_snapshot(document: &Document) -> Result<MetaFile, MetadataError> {
        let meta: Meta = document.typed()?;
        match meta.meta.get("snapshot.json") {
            Some(entry) if meta.meta.len() == 1 => Ok(entry.clone()),
            _ => Err(MetadataError::TimestampMeta),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_format_is_strict() {
        assert!(parse_expires("2030-01-01T00:00:00Z").is_ok());
        for bad in [
            "2030-01-01T00:00:00.5Z",
            "2030-01-01T00:00:00+00:00",
            "2030-01-01 00:00:00Z",
            "2030-1-01T00:00:00Z",
            "2030-02-30T00:00:00Z",
            "",
        ] {
            assert!(parse_expires(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_version_major_must_be_one() {
        assert!(is_supported_spec_version("1.0.31"));
        assert!(is_supported_spec_version("1.0"));
        assert!(!is_supported_spec_version("2.0.0"));
        assert!(!is_supported_spec_version("1"));
        assert!(!is_supported_spec_version("1.0.x"));
    }

    #[test]
    fn glob_star_stays_within_segment() {
        assert!(glob_matches("targets/*.tgz", "targets/foo.tgz"));
        assert!(!glob_matches("*.tgz", "targets/foo.tgz"));
        assert!(!glob_matches("projects/*", "projects/a/b.txt"));
        assert!(glob_matches("projects/*/*", "projects/a/b.txt"));
        assert!(glob_matches("v?.*", "v1.2"));
        assert!(glob_matches("*", "latest"));
        assert!(!glob_matches("a*c", "abd"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
    }

    #[test]
    fn document_parse_checks_type_and_version() {
        let doc = br#"{"signed":{"_type":"targets","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","targets":{}},"signatures":[]}"#;
        assert!(Document::parse(doc.to_vec(), RoleType::Targets).is_ok());
        assert!(matches!(Document::parse(doc.to_vec(), RoleType::Root), Err(MetadataError::WrongType { .. })));
        let zero = br#"{"signed":{"_type":"targets","spec_version":"1.0.31","version":0,"expires":"2030-01-01T00:00:00Z","targets":{}},"signatures":[]}"#;
        assert!(matches!(Document::parse(zero.to_vec(), RoleType::Targets), Err(MetadataError::InvalidVersion)));
    }
}
