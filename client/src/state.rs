//! Local state of the client: the home directory layout, per-repository trusted metadata and
//! staged changes.
//!
//! ```text
//! HOME/private/                         encrypted private keys (see keystore)
//! HOME/repositories/GUN/metadata/       trusted metadata, exact served bytes
//! HOME/repositories/GUN/staged.json     changes not yet published
//! ```
//! `GUN` is percent-encoded into one path segment.

use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use signet_core::Gun;

use crate::updater::MetadataDir;

const SEGMENT_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// A staged change to the top-level targets role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Change {
    /// Adds or replaces a tag.
    Add { tag: String, digest: String, size: u64, media_type: Option<String> },
    /// Removes a tag.
    Remove { tag: String },
}

/// Error for local state that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} {}", path.display())]
pub struct StateError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The state of one repository in the home directory.
#[derive(Debug, Clone)]
pub struct RepositoryState {
    dir: PathBuf,
}

impl RepositoryState {
    pub fn new(home: &Path, gun: &Gun) -> RepositoryState {
        let segment = utf8_percent_encode(gun.as_str(), SEGMENT_ESCAPES).to_string();
        RepositoryState { dir: home.join("repositories").join(segment) }
    }

    pub fn metadata(&self) -> MetadataDir {
        MetadataDir::new(&self.dir.join("metadata"))
    }

    pub fn has_trusted_root(&self) -> bool {
        self.dir.join("metadata").join("root.json").exists()
    }

    fn staged_path(&self) -> PathBuf {
        self.dir.join("staged.json")
    }

    pub fn staged(&self) -> Result<Vec<Change>, StateError> {
        let path = self.staged_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError { action: "parse", path, source: e.into() }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(StateError { action: "read", path, source }),
        }
    }

    pub fn stage(&self, change: Change) -> Result<(), StateError> {
        let mut changes = self.staged()?;
        changes.push(change);
        self.write_staged(&changes)
    }

    pub fn reset(&self) -> Result<(), StateError> {
        self.write_staged(&[])
    }

    /// Replaces the staged changes, for example to restore them after a failed publish.
    pub fn restore(&self, changes: &[Change]) -> Result<(), StateError> {
        self.write_staged(changes)
    }

    fn write_staged(&self, changes: &[Change]) -> Result<(), StateError> {
        let path = self.staged_path();
        std::fs::create_dir_all(&self.dir).map_err(|source| StateError { action: "create", path: self.dir.clone(), source })?;
        let bytes = serde_json::to_vec_pretty(changes).map_err(|e| StateError { action: "encode", path: path.clone(), source: e.into() })?;
        std::fs::write(&path, bytes).map_err(|source| StateError { action: "write", path, source })
    }

    /// Removes all local state of the repository.
    pub fn delete(&self) -> Result<(), StateError> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError { action: "remove", path: self.dir.clone(), source }),
        }
    }
}
