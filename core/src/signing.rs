//! Private keys that sign TUF metadata with ring: Ed25519 and ECDSA P-256 (SHA-256, DER
//! signatures). Used by the server for snapshot and timestamp, and by clients and tests.

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};

use crate::canonical::{to_canonical, CanonicalError};
use crate::keys::{key_id, PublicKey};

/// The algorithm of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Ed25519,
    EcdsaP256,
}

impl KeyAlgorithm {
    /// Parses `ed25519` or `ecdsa` (also `ecdsa-sha2-nistp256`).
    pub fn parse(name: &str) -> Option<KeyAlgorithm> {
        match name {
            "ed25519" => Some(KeyAlgorithm::Ed25519),
            "ecdsa" | "ecdsa-sha2-nistp256" => Some(KeyAlgorithm::EcdsaP256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::EcdsaP256 => "ecdsa",
        }
    }
}

/// Signing failed: the key material is not a valid PKCS#8 document for its algorithm.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("invalid {0} private key (PKCS#8)")]
    InvalidKey(&'static str),

    #[error("random number generator failed")]
    Random,

    #[error(transparent)]
    Canonical(#[from] CanonicalError),

    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// A private key with its TUF key object and key id.
pub struct SigningKey {
    pair: Pair,
    tuf_key: Value,
    key_id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Private key material is never formatted.
        f.debug_struct("SigningKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key and returns it with its PKCS#8 encoding, for storage.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<(SigningKey, Vec<u8>), SigningError> {
        let rng = SystemRandom::new();
        let pkcs8 = match algorithm {
            KeyAlgorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| SigningError::Random)?,
            KeyAlgorithm::EcdsaP256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).map_err(|_| SigningError::Random)?
            }
        };
        let pkcs8 = pkcs8.as_ref().to_vec();
        Ok((SigningKey::from_pkcs8(algorithm, &pkcs8)?, pkcs8))
    }

    /// Loads a key from its PKCS#8 encoding.
    pub fn from_pkcs8(algorithm: KeyAlgorithm, pkcs8: &[u8]) -> Result<SigningKey, SigningError> {
        let (pair, tuf_key) = match algorithm {
            KeyAlgorithm::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SigningError::InvalidKey("ed25519"))?;
                let tuf_key = PublicKey::ed25519_tuf_object(pair.public_key().as_ref());
                (Pair::Ed25519(pair), tuf_key)
            }
            KeyAlgorithm::EcdsaP256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &SystemRandom::new())
                    .map_err(|_| SigningError::InvalidKey("ecdsa"))?;
                let tuf_key = PublicKey::ecdsa_p256_tuf_object(pair.public_key().as_ref());
                (Pair::Ecdsa(pair), tuf_key)
            }
        };
        let key_id = key_id(&tuf_key)?;
        Ok(SigningKey { pair, tuf_key, key_id })
    }

    /// Returns the TUF key object: `keytype`, `scheme` and `keyval.public`, nothing else.
    pub fn tuf_key(&self) -> &Value {
        &self.tuf_key
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs `message` and returns the raw signature bytes.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        match &self.pair {
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Pair::Ecdsa(pair) => {
                let sig = pair.sign(&SystemRandom::new(), message).map_err(|_| SigningError::Random)?;
                Ok(sig.as_ref().to_vec())
            }
        }
    }
}

/// Signs `signed` with every key and returns the metadata file bytes, written as canonical JSON
/// so the same input always produces the same bytes.
pub fn sign_metadata(signed: &Value, keys: &[&SigningKey]) -> Result<Vec<u8>, SigningError> {
    let message = to_canonical(signed)?;
    let mut signatures = Vec::with_capacity(keys.len());
    for key in keys {
        signatures.push(json!({"keyid": key.key_id(), "sig": hex::encode(key.sign(&message)?)}));
    }
    Ok(to_canonical(&json!({"signed": signed, "signatures": signatures}))?)
}
