//! An index of a verified targets role, so that a later lookup reads one entry instead of
//! parsing and verifying the whole role again.
//!
//! Parsing, canonicalizing and verifying a targets role of 10,000 entries takes tens of
//! milliseconds, and a client would repeat it on every lookup while nothing changed. After the
//! role passed every check, the client can store an index of it: a header line, then one line
//! per target, `"NAME"<TAB>ENTRY`, with the name as a JSON string and the entry as compact
//! JSON. The header binds the index to the SHA-256 of the exact role file and to an anchor: what
//! the role's signatures were checked against (see [`crate::trusted::TrustedSet`]). An index is
//! accepted only while the role file still has that hash and the anchor is unchanged. The
//! snapshot must list the same version, length and hashes, and the role must not have expired.
//! A file that was not verified under the current trust is therefore never accepted.
//!
//! The index is local state, trusted like the stored root: a user with write access to the
//! metadata directory can also replace the trusted root.
//!
//! JSON strings never contain a raw line feed, so `\n"NAME"\t` occurs once, at the start of
//! NAME's line, and a lookup is one substring search.

use chrono::{DateTime, Utc};
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metadata::{check_delegations, CheckedTargets, DelegatedRole, Delegations, Document, MetadataError, TargetFile};
use crate::PublicKey;

/// Format marker of the header line. An index in another format is rebuilt.
const FORMAT: &str = "signet-targets-index-1";

/// Error for an index that cannot be used. The caller falls back to a full check.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the index is not in a format this version reads")]
    Format,

    #[error("the index was built for {0}, which differs from what is trusted now")]
    Stale(&'static str),

    #[error("invalid index: {0}")]
    Invalid(String),

    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    format: String,
    role: String,
    version: u64,
    expires: DateTime<Utc>,
    file_sha256: String,
    anchor: String,
    #[serde(default)]
    delegations: Option<Value>,
}

/// A parsed index of one targets role.
#[derive(Debug, Clone)]
pub struct TargetsIndex {
    header: Header,
    /// The whole index text, header line included.
    text: String,
    delegation_keys: std::collections::BTreeMap<String, PublicKey>,
    delegated_roles: Vec<DelegatedRole>,
}

/// Hex SHA-256 of a file, as stored in the index header.
pub fn file_sha256(bytes: &[u8]) -> String {
    hex::encode(digest(&SHA256, bytes))
}

impl TargetsIndex {
    /// Builds the index text of a role that passed every check. `anchor` identifies the keys its
    /// signatures were verified against.
    pub fn build(role: &str, document: &Document, checked: &CheckedTargets, anchor: &str) -> Result<Vec<u8>, IndexError> {
        let header = Header {
            format: FORMAT.to_owned(),
            role: role.to_owned(),
            version: document.version,
            expires: document.expires,
            file_sha256: file_sha256(&document.bytes),
            anchor: anchor.to_owned(),
            delegations: document.signed.get("delegations").cloned(),
        };
        let invalid = |error: serde_json::Error| IndexError::Invalid(error.to_string());
        let mut text = serde_json::to_vec(&header).map_err(invalid)?;
        text.push(b'\n');
        for (name, target) in &checked.targets.targets {
            serde_json::to_writer(&mut text, name).map_err(invalid)?;
            text.push(b'\t');
            serde_json::to_writer(&mut text, target).map_err(invalid)?;
            text.push(b'\n');
        }
        Ok(text)
    }

    /// Parses an index. Only the header and the delegations are read here. Entries are read when
    /// looked up.
    pub fn parse(bytes: Vec<u8>) -> Result<TargetsIndex, IndexError> {
        let text = String::from_utf8(bytes).map_err(|_| IndexError::Invalid("not UTF-8".to_owned()))?;
        let header_line = text.split('\n').next().unwrap_or_default();
        let header: Header = serde_json::from_str(header_line).map_err(|_| IndexError::Format)?;
        if header.format != FORMAT {
            return Err(IndexError::Format);
        }
        let delegations: Option<Delegations> = match &header.delegations {
            Some(value) => Some(serde_json::from_value(value.clone()).map_err(|error| IndexError::Invalid(error.to_string()))?),
            None => None,
        };
        let (delegation_keys, delegated_roles) = check_delegations(delegations.as_ref())?;
        Ok(TargetsIndex { header, text, delegation_keys, delegated_roles })
    }

    pub fn role(&self) -> &str {
        &self.header.role
    }

    pub fn version(&self) -> u64 {
        self.header.version
    }

    pub fn expires(&self) -> DateTime<Utc> {
        self.header.expires
    }

    pub fn file_sha256(&self) -> &str {
        &self.header.file_sha256
    }

    pub fn anchor(&self) -> &str {
        &self.header.anchor
    }

    pub fn delegation_keys(&self) -> &std::collections::BTreeMap<String, PublicKey> {
        &self.delegation_keys
    }

    pub fn delegated_roles(&self) -> &[DelegatedRole] {
        &self.delegated_roles
    }

    /// Returns the entry for `name`, reading only its line.
    pub fn get(&self, name: &str) -> Result<Option<TargetFile>, IndexError> {
        let invalid = |error: serde_json::Error| IndexError::Invalid(error.to_string());
        let mut needle = String::with_capacity(name.len() + 4);
        needle.push('\n');
        needle.push_str(&serde_json::to_string(name).map_err(invalid)?);
        needle.push('\t');
        let Some(start) = self.text.find(&needle) else {
            return Ok(None);
        };
        let entry = &self.text[start + needle.len()..];
        let entry = entry.split('\n').next().unwrap_or_default();
        let target: TargetFile = serde_json::from_str(entry).map_err(invalid)?;
        if !target.hashes.contains_key("sha256") {
            return Err(IndexError::Invalid(format!("entry {name:?} has no sha256 hash")));
        }
        Ok(Some(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::RoleType;
    use crate::testing::*;
    use serde_json::json;

    fn targets_document(names: &[&str]) -> Document {
        let keys = keys();
        Document::parse(signed(&targets_with(names), &keys.targets), RoleType::Targets).unwrap()
    }

    #[test]
    fn finds_each_entry_and_nothing_else() {
        let names = ["latest", "v1", "v1.1", "team/v1", "quote\"d", "back\\slash", "ünïcode"];
        let document = targets_document(&names);
        let checked = CheckedTargets::from_document(&document).unwrap();
        let index = TargetsIndex::parse(TargetsIndex::build("targets", &document, &checked, "anchor").unwrap()).unwrap();

        for name in names {
            let expected = &checked.targets.targets[name];
            let found = index.get(name).unwrap().unwrap();
            assert_eq!((found.length, &found.hashes), (expected.length, &expected.hashes), "{name}");
        }
        // Prefixes, suffixes and escaped forms of listed names are not entries.
        for name in ["v", "v1.", "atest", "team", "quote", "back", "\"latest\""] {
            assert!(index.get(name).unwrap().is_none(), "{name}");
        }
        assert_eq!(index.version(), document.version);
        assert_eq!(index.file_sha256(), file_sha256(&document.bytes));
        assert_eq!(index.anchor(), "anchor");
    }

    #[test]
    fn keeps_delegations() {
        let keys = keys();
        let delegate = key();
        let mut targets = targets_with(&["top"]);
        targets["delegations"] = json!({
            "keys": {delegate.key_id(): delegate.tuf_key()},
            "roles": [{"name": "team", "keyids": [delegate.key_id()], "threshold": 1, "paths": ["team/*"], "terminating": true}],
        });
        let document = Document::parse(signed(&targets, &keys.targets), RoleType::Targets).unwrap();
        let checked = CheckedTargets::from_document(&document).unwrap();
        let index = TargetsIndex::parse(TargetsIndex::build("targets", &document, &checked, "anchor").unwrap()).unwrap();
        assert_eq!(index.delegated_roles().len(), 1);
        assert_eq!(index.delegated_roles()[0].name, "team");
        assert!(index.delegation_keys().contains_key(delegate.key_id()));
    }

    #[test]
    fn refuses_other_formats() {
        assert!(matches!(TargetsIndex::parse(b"{\"format\":\"other\"}\n".to_vec()), Err(IndexError::Format)));
        assert!(matches!(TargetsIndex::parse(b"not json\n".to_vec()), Err(IndexError::Format)));
        assert!(TargetsIndex::parse(vec![0xff, 0xfe]).is_err());
    }
}
