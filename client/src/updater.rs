//! The TUF client workflow over HTTP: refresh root, timestamp, snapshot and targets, then
//! search delegations lazily, keeping the newest trusted metadata on disk.
//!
//! Verification is [`signet_core::trusted::TrustedSet`]; this module only downloads and
//! stores. With nothing changed on the server, a refresh costs two small requests: the next
//! root version (404) and the timestamp. Files are stored as the exact bytes served.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use signet_core::index::TargetsIndex;
use signet_core::metadata::{DelegatedRole, TargetFile};
use signet_core::search::{SearchStep, TargetSearch, MAX_DELEGATIONS};
use signet_core::trusted::{TimestampUpdate, TrustedSet, VerifyError};
use signet_core::RoleName;

use crate::remote::{Remote, RemoteError};

/// Download limits (TUF 5.3.1, 5.4.1: endless data attacks) where metadata lists no length.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub root: u64,
    pub timestamp: u64,
    pub snapshot: u64,
    pub targets: u64,
    pub max_root_updates: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { root: 512 * 1024, timestamp: 16 * 1024, snapshot: 4 * 1024 * 1024, targets: 32 * 1024 * 1024, max_root_updates: 256 }
    }
}

/// Error for a failed update. [`UpdateError::is_untrusted`] separates verification failures from
/// operational ones.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Remote(#[from] RemoteError),

    #[error("metadata failed verification: {0}")]
    Verify(#[from] VerifyError),

    #[error("the server has no {0} for this repository; is it initialized?")]
    Missing(String),

    #[error("more than {0} root versions to walk; the server may be malicious")]
    TooManyRoots(u64),

    #[error("failed to {action} {path}")]
    Io { action: &'static str, path: PathBuf, #[source] source: std::io::Error },
}

impl UpdateError {
    /// True when the metadata did not verify, as opposed to a network or disk failure.
    pub fn is_untrusted(&self) -> bool {
        matches!(self, UpdateError::Verify(_) | UpdateError::TooManyRoots(_) | UpdateError::Remote(RemoteError::TooLarge { .. }))
    }
}

/// Characters escaped in role names used as file names and URL segments.
const ROLE_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Encodes a role name for a file name or URL: `targets/releases` becomes `targets%2Freleases`.
pub fn encode_role(role: &RoleName) -> String {
    utf8_percent_encode(role.as_str(), ROLE_ESCAPES).to_string()
}

/// The directory of trusted metadata for one repository: `ROLE.json` files holding the exact
/// bytes that were served and verified.
#[derive(Debug, Clone)]
pub struct MetadataDir {
    path: PathBuf,
}

impl MetadataDir {
    pub fn new(path: &Path) -> MetadataDir {
        MetadataDir { path: path.to_owned() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self, role: &RoleName) -> PathBuf {
        self.path.join(format!("{}.json", encode_role(role)))
    }

    pub fn read(&self, role: &RoleName) -> Result<Option<Vec<u8>>, UpdateError> {
        let path = self.file(role);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(UpdateError::Io { action: "read", path, source }),
        }
    }

    /// Writes a file atomically: a crash leaves the old or the new version, never a mix.
    pub fn write(&self, role: &RoleName, bytes: &[u8]) -> Result<(), UpdateError> {
        write_atomically(&self.file(role), bytes)
    }

    /// Returns the path of a targets role's index. Indexes are in the `index` subdirectory, so
    /// the directory itself contains only metadata files.
    fn index_file(&self, role: &RoleName) -> PathBuf {
        self.path.join("index").join(format!("{}.index", encode_role(role)))
    }

    fn read_index(&self, role: &RoleName) -> Result<Option<Vec<u8>>, UpdateError> {
        let path = self.index_file(role);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(UpdateError::Io { action: "read", path, source }),
        }
    }

    fn write_index(&self, role: &RoleName, bytes: &[u8]) -> Result<(), UpdateError> {
        write_atomically(&self.index_file(role), bytes)
    }

    pub fn remove(&self, role: &RoleName) -> Result<(), UpdateError> {
        let path = self.file(role);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(UpdateError::Io { action: "remove", path, source }),
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), UpdateError> {
    let io = |action, source| UpdateError::Io { action, path: path.to_owned(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("create directory for", e))?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary).map_err(|e| io("create", e))?;
    file.write_all(bytes).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("sync", e))?;
    std::fs::rename(&temporary, path).map_err(|e| io("replace", e))
}

/// A client for one repository.
pub struct Updater {
    remote: Remote,
    dir: MetadataDir,
    set: TrustedSet,
    limits: Limits,
    use_index: bool,
}

impl Updater {
    /// Starts from the newest trusted root in `dir`, or from `root` when given (which then
    /// replaces the stored trust anchor).
    pub fn new(remote: Remote, dir: MetadataDir, root: Option<Vec<u8>>, now: DateTime<Utc>) -> Result<Updater, UpdateError> {
        let root = match root {
            Some(bytes) => bytes,
            None => dir.read(&RoleName::root())?.ok_or_else(|| UpdateError::Missing("trusted root".to_owned()))?,
        };
        let set = TrustedSet::new(root.clone(), now)?;
        dir.write(&RoleName::root(), &root)?;
        Ok(Updater { remote, dir, set, limits: Limits::default(), use_index: false })
    }

    /// Keeps an index of each verified targets role and accepts a stored role through its index
    /// while nothing it was verified under changed, so a lookup reads one entry instead of
    /// verifying the whole role again. Roles accepted this way are searched with
    /// [`Updater::find_target`] only: [`TrustedSet::targets`] and [`Updater::all_targets`] need
    /// roles loaded in full, so commands that edit or list targets leave this off.
    pub fn use_index(&mut self, enabled: bool) {
        self.use_index = enabled;
    }

    pub fn trusted(&self) -> &TrustedSet {
        &self.set
    }

    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Starts over from the newest stored root, so the next [`Updater::refresh`] runs the whole
    /// workflow again (used before retrying a publish).
    pub fn restart(&mut self, now: DateTime<Utc>) -> Result<(), UpdateError> {
        let root = self.dir.read(&RoleName::root())?.ok_or_else(|| UpdateError::Missing("trusted root".to_owned()))?;
        self.set = TrustedSet::new(root, now)?;
        Ok(())
    }

    /// Runs TUF 5.3 to 5.6: root chain, timestamp, snapshot and top-level targets.
    pub async fn refresh(&mut self) -> Result<(), UpdateError> {
        self.update_root().await?;

        // Local timestamp and snapshot serve as rollback references. Those that no longer verify
        // (keys rotated: fast-forward recovery, 5.3.11) are dropped.
        for role in [RoleName::timestamp(), RoleName::snapshot()] {
            if let Some(bytes) = self.dir.read(&role)? {
                let loaded = match role.as_str() {
                    RoleName::TIMESTAMP => self.set.load_local_timestamp(bytes),
                    _ => self.set.load_local_snapshot(bytes),
                };
                if loaded.is_err() {
                    self.dir.remove(&role)?;
                }
            }
        }

        let timestamp = self.remote.fetch("timestamp.json", self.limits.timestamp).await?;
        let timestamp = timestamp.ok_or_else(|| UpdateError::Missing("timestamp".to_owned()))?;
        if self.set.update_timestamp(timestamp.clone())? == TimestampUpdate::Updated {
            self.dir.write(&RoleName::timestamp(), &timestamp)?;
        }

        let snapshot_meta = self.set.snapshot_meta()?;
        let local = self.dir.read(&RoleName::snapshot())?;
        let reused = match local {
            Some(bytes) if self.set.snapshot().is_some_and(|s| s.version == snapshot_meta.version) => self.set.update_snapshot(bytes).is_ok(),
            _ => false,
        };
        if !reused {
            let limit = snapshot_meta.length.unwrap_or(self.limits.snapshot);
            let file = format!("{}.snapshot.json", snapshot_meta.version);
            let bytes = self.remote.fetch(&file, limit).await?.ok_or_else(|| UpdateError::Missing(file))?;
            self.set.update_snapshot(bytes.clone())?;
            self.dir.write(&RoleName::snapshot(), &bytes)?;
        }

        self.load_targets(&RoleName::targets(), None).await
    }

    async fn update_root(&mut self) -> Result<(), UpdateError> {
        for _ in 0..self.limits.max_root_updates {
            let next = self.set.root().version + 1;
            let Some(bytes) = self.remote.fetch(&format!("{next}.root.json"), self.limits.root).await? else {
                return Ok(());
            };
            self.set.update_root(bytes.clone())?;
            self.dir.write(&RoleName::root(), &bytes)?;
        }
        Err(UpdateError::TooManyRoots(self.limits.max_root_updates))
    }

    /// Loads a targets role, from disk when the stored copy is the version snapshot lists.
    async fn load_targets(&mut self, role: &RoleName, delegator: Option<&RoleName>) -> Result<(), UpdateError> {
        let meta = self.set.role_meta(role)?;
        if let Some(bytes) = self.dir.read(role)? {
            if self.use_index && self.load_indexed(role, delegator, &bytes)? {
                return Ok(());
            }
            if self.set.update_targets(role, delegator, bytes).is_ok() {
                return self.store_index(role, delegator);
            }
        }
        let limit = meta.length.unwrap_or(self.limits.targets);
        let file = format!("{}.{}.json", meta.version, encode_role(role));
        let bytes = self.remote.fetch(&file, limit).await?.ok_or_else(|| UpdateError::Missing(file))?;
        self.set.update_targets(role, delegator, bytes.clone())?;
        self.dir.write(role, &bytes)?;
        self.store_index(role, delegator)
    }

    /// Accepts the stored role through its index when the index is still valid.
    fn load_indexed(&mut self, role: &RoleName, delegator: Option<&RoleName>, bytes: &[u8]) -> Result<bool, UpdateError> {
        let Some(index) = self.dir.read_index(role)? else {
            return Ok(false);
        };
        // An index that is unreadable or no longer matches is rebuilt after a full check.
        let Ok(index) = TargetsIndex::parse(index) else {
            return Ok(false);
        };
        Ok(self.set.update_targets_from_index(role, delegator, bytes, index).is_ok())
    }

    fn store_index(&self, role: &RoleName, delegator: Option<&RoleName>) -> Result<(), UpdateError> {
        if !self.use_index {
            return Ok(());
        }
        let index = self.set.build_index(role, delegator)?;
        self.dir.write_index(role, &index)
    }

    /// Finds a target by walking delegations, loading roles only as the walk needs them.
    pub async fn find_target(&mut self, name: &str) -> Result<Option<(RoleName, TargetFile)>, UpdateError> {
        let mut search = TargetSearch::new(name);
        loop {
            match search.next(&self.set)? {
                SearchStep::Found { role, target } => return Ok(Some((role, target))),
                SearchStep::NotFound => return Ok(None),
                SearchStep::Load { role, delegator } => self.load_targets(&role, Some(&delegator)).await?,
            }
        }
    }

    /// Every trusted target, with the role that signed it. A name listed by several roles is
    /// reported once, for the role the search would find first; targets outside the paths of
    /// their delegation chain are left out.
    pub async fn all_targets(&mut self) -> Result<BTreeMap<String, (RoleName, TargetFile)>, UpdateError> {
        let mut found = BTreeMap::new();
        let mut to_visit: Vec<(RoleName, Option<RoleName>, Vec<DelegatedRole>)> = vec![(RoleName::targets(), None, Vec::new())];
        let mut visited = std::collections::BTreeSet::new();

        while let Some((role, delegator, chain)) = to_visit.pop() {
            if !visited.insert(role.clone()) || visited.len() > MAX_DELEGATIONS {
                continue;
            }
            if delegator.is_some() {
                self.load_targets(&role, delegator.as_ref()).await?;
            }
            let Some((_, targets)) = self.set.targets(&role) else {
                continue;
            };
            for (name, target) in &targets.targets.targets {
                let allowed = chain.iter().all(|delegation| delegation.matches(name));
                if allowed && !found.contains_key(name) {
                    found.insert(name.clone(), (role.clone(), target.clone()));
                }
            }
            let mut children = Vec::new();
            for delegation in self.set.delegations(&role) {
                if let Ok(child) = RoleName::parse(&delegation.name) {
                    let mut child_chain = chain.clone();
                    child_chain.push(delegation);
                    children.push((child, Some(role.clone()), child_chain));
                }
            }
            children.reverse();
            to_visit.extend(children);
        }
        Ok(found)
    }
}
