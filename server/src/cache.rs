//! A short-lived in-memory cache of current (unversioned) metadata.
//!
//! Trade-off: with a time to live of T, a GET may return a version up to T older than the
//! newest committed one, and other server processes see a publish at most T after it returned.
//! A cached entry is only ever replaced by the same or a newer version, so one process never
//! serves an older version than it served before. A time to live of 0 disables the
//! cache. The cache holds at most [`MAX_ENTRIES`] entries and is emptied when full.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// Upper bound on cached (repository, role) entries.
pub const MAX_ENTRIES: usize = 10_000;

/// One cached metadata file.
#[derive(Debug)]
pub struct CachedFile {
    pub version: i64,
    pub sha256: String,
    pub body: Bytes,
    fetched: Instant,
}

impl CachedFile {
    /// `fetched` is when the database read started, so a read that overlapped a publish counts
    /// as older than it.
    pub fn new(version: i64, sha256: String, body: Bytes, fetched: Instant) -> CachedFile {
        CachedFile { version, sha256, body, fetched }
    }
}

#[derive(Default)]
struct Entries {
    files: HashMap<(String, String), Arc<CachedFile>>,
    /// Entries of a repository fetched before this instant are stale: it was published to.
    stale_before: HashMap<String, Instant>,
}

pub struct MetadataCache {
    ttl: Duration,
    entries: RwLock<Entries>,
    /// One lock per (repository, role) being refilled, so concurrent misses wait for one database
    /// read instead of each running their own.
    refills: std::sync::Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>>,
}

impl MetadataCache {
    pub fn new(ttl: Duration) -> MetadataCache {
        MetadataCache { ttl, entries: RwLock::new(Entries::default()), refills: std::sync::Mutex::new(HashMap::new()) }
    }

    /// Returns the entry if it is fresh.
    pub fn get(&self, gun: &str, role: &str) -> Option<Arc<CachedFile>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = entries.files.get(&(gun.to_owned(), role.to_owned()))?;
        let stale = entries.stale_before.get(gun).is_some_and(|instant| entry.fetched <= *instant);
        (!stale && entry.fetched.elapsed() < self.ttl).then(|| entry.clone())
    }

    /// Stores `file` unless a newer version is cached, and returns what callers should serve.
    pub fn put(&self, gun: &str, role: &str, file: CachedFile) -> Arc<CachedFile> {
        let file = Arc::new(file);
        if self.ttl.is_zero() {
            return file;
        }
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.files.len() >= MAX_ENTRIES {
            entries.files.clear();
        }
        let key = (gun.to_owned(), role.to_owned());
        match entries.files.get(&key) {
            Some(existing) if existing.version > file.version => existing.clone(),
            _ => {
                entries.files.insert(key, file.clone());
                file
            }
        }
    }

    /// False when the time to live is zero and every request reads the database.
    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// Returns the lock that serializes refills of one (repository, role) entry. A caller that
    /// missed the cache takes it, checks the cache again, and only then reads the database.
    pub fn refill_lock(&self, gun: &str, role: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut refills = self.refills.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if refills.len() >= MAX_ENTRIES {
            // Unused locks are dropped. Locks in use stay shared through their Arc.
            refills.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        refills.entry((gun.to_owned(), role.to_owned())).or_default().clone()
    }

    /// Marks a repository's entries stale after a publish in this process. The entries stay as
    /// a floor, so a slower read of an older version is never served after a newer one.
    pub fn invalidate(&self, gun: &str) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.stale_before.len() >= MAX_ENTRIES {
            entries.stale_before.clear();
            entries.files.clear();
        }
        entries.stale_before.insert(gun.to_owned(), Instant::now());
    }

    /// Forgets a deleted repository, so a new repository of the same name starts over.
    pub fn remove(&self, gun: &str) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.files.retain(|(cached_gun, _), _| cached_gun != gun);
        entries.stale_before.remove(gun);
    }
}
