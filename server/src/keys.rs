//! Server-held signing keys: the key encryption key (KEK) and AES-256-GCM sealing of private
//! keys at rest.
//!
//! Private keys are stored only encrypted, with the repository, role and key id as associated
//! data so a ciphertext cannot be moved to another row. They never leave the process and are
//! never logged.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::KekSource;

/// The key encryption key.
pub struct Kek {
    key: LessSafeKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

/// Decryption failed: the stored key was encrypted under another KEK or was altered.
#[derive(Debug, thiserror::Error)]
#[error("failed to decrypt a server-held private key; the key encryption key differs from the one it was encrypted with, or the stored ciphertext was altered")]
pub struct UnsealError;

impl Kek {
    /// Loads the KEK, creating the file with mode 0600 when the source allows it.
    pub fn load(source: &KekSource) -> anyhow::Result<Kek> {
        let hex_text = match source {
            KekSource::Hex(text) => text.clone(),
            KekSource::File { path, create } => {
                if *create && !path.exists() {
                    create_kek_file(path)?;
                }
                std::fs::read_to_string(path)
                    .with_context(|| format!("failed to read the key encryption key file {}", path.display()))?
            }
        };
        let bytes = hex::decode(hex_text.trim())
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .context("the key encryption key must be 64 hex characters (32 bytes)")?;
        Kek::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Kek> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).ok().context("the key encryption key must be 32 bytes")?;
        Ok(Kek { key: LessSafeKey::new(unbound) })
    }

    /// Encrypts `plaintext`; returns (nonce, ciphertext with tag).
    pub fn seal(&self, associated: &str, plaintext: &[u8]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok().context("random number generator failed")?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(associated.as_bytes()), &mut in_out)
            .ok()
            .context("failed to encrypt a server-held private key")?;
        Ok((nonce.to_vec(), in_out))
    }

    /// Decrypts what [`Kek::seal`] produced with the same associated data.
    pub fn open(&self, associated: &str, nonce: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, UnsealError> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| UnsealError)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self.key.open_in_place(nonce, Aad::from(associated.as_bytes()), &mut in_out).map_err(|_| UnsealError)?;
        Ok(plaintext.to_vec())
    }
}

/// Associated data binding a sealed key to its repository, role and key id.
pub fn associated_data(gun: &str, role: &str, key_id: &str) -> String {
    format!("signet-server-key\n{gun}\n{role}\n{key_id}")
}

fn create_kek_file(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;

    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
    }
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok().context("random number generator failed")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to create the key encryption key file {}", path.display()))?;
    file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
        .with_context(|| format!("failed to write {}", path.display()))?;
    tracing::info!(path = %path.display(), "created a new key encryption key; keep this file, server-held keys cannot be decrypted without it");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_associated_data() {
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let (nonce, sealed) = kek.seal("a", b"secret").unwrap();
        assert_eq!(kek.open("a", &nonce, &sealed).unwrap(), b"secret");
        assert!(kek.open("b", &nonce, &sealed).is_err());
        let other = Kek::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("a", &nonce, &sealed).is_err());
    }

    #[test]
    fn created_kek_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        Kek::load(&KekSource::File { path: path.clone(), create: true }).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A second load reads the same key instead of creating another.
        let first = std::fs::read_to_string(&path).unwrap();
        Kek::load(&KekSource::File { path: path.clone(), create: true }).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    }
}
