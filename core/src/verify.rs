//! Threshold signature verification over a document's canonical `signed` bytes.

use std::collections::{BTreeMap, HashSet};

use crate::keys::PublicKey;
use crate::metadata::{Document, RoleKeys};

/// A role's signatures did not reach its threshold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{role} has {valid} valid signature(s) from {signer}, threshold is {threshold}")]
pub struct ThresholdNotMet {
    pub role: String,
    /// Name of the key set that was checked, such as "root version 3" or "targets delegation".
    pub signer: String,
    pub valid: usize,
    pub threshold: u64,
}

/// Counts the distinct keys among `definition.keyids` that produced a valid signature on
/// `document`, and checks the count against the threshold.
///
/// TUF 5.3.4 and 5.4.2: each key counts at most once. A repeated signature, or one key listed
/// under two key ids, counts once, because the key's material is what is counted.
pub fn verify_threshold(
    document: &Document,
    role: &str,
    signer: &str,
    definition: &RoleKeys,
    keys: &BTreeMap<String, PublicKey>,
) -> Result<(), ThresholdNotMet> {
    let valid = count_valid_keys(document, definition, keys);
    // A threshold that does not fit in usize cannot be met either.
    let met = usize::try_from(definition.threshold).is_ok_and(|threshold| valid >= threshold);
    if met && definition.threshold >= 1 {
        return Ok(());
    }
    Err(ThresholdNotMet { role: role.to_owned(), signer: signer.to_owned(), valid, threshold: definition.threshold })
}

fn count_valid_keys(document: &Document, definition: &RoleKeys, keys: &BTreeMap<String, PublicKey>) -> usize {
    let mut counted: HashSet<&PublicKey> = HashSet::new();
    for signature in &document.signatures {
        if !definition.keyids.contains(&signature.key_id) {
            continue;
        }
        let Some(key) = keys.get(&signature.key_id) else {
            continue;
        };
        if counted.contains(key) {
            continue;
        }
        if key.verify(&document.signed_canonical, &signature.sig) {
            counted.insert(key);
        }
    }
    counted.len()
}
