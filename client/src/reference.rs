//! Image references: `NAME[:TAG][@sha256:HEX]`, normalized the way Docker does.
//!
//! A first path component that has no `.` or `:` and is not `localhost` names Docker Hub:
//! `nginx` becomes `docker.io/library/nginx` and `team/app` becomes `docker.io/team/app`.
//! Other names stay as written. The normalized name is the repository's GUN.

use std::fmt;

use signet_core::{Gun, NameError};

/// Error for an image reference that could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error(transparent)]
    Name(#[from] NameError),

    #[error("invalid tag {0:?}: a tag is 1 to 128 characters of [A-Za-z0-9_.-] and does not start with '.' or '-'")]
    Tag(String),

    #[error("invalid digest {0:?}: expected sha256: followed by 64 lowercase hex characters")]
    Digest(String),
}

/// A content digest, `sha256:HEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest(String);

impl Digest {
    pub fn parse(text: &str) -> Result<Digest, ReferenceError> {
        let hex = text.strip_prefix("sha256:").ok_or_else(|| ReferenceError::Digest(text.to_owned()))?;
        let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(ReferenceError::Digest(text.to_owned()));
        }
        Ok(Digest(text.to_owned()))
    }

    /// Builds a digest from the lowercase hex of a SHA-256.
    pub fn from_sha256_hex(hex: &str) -> Result<Digest, ReferenceError> {
        Digest::parse(&format!("sha256:{}", hex.to_ascii_lowercase()))
    }

    /// Returns the 64 hex characters without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub gun: Gun,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes an image reference.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (text, None),
        };
        // A tag follows the last ':' that comes after the last '/', so a registry port stays.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        let tag = tag.map(check_tag).transpose()?;
        let gun = Gun::parse(&normalize_name(name))?;
        Ok(Reference { gun, tag, digest })
    }

    /// `GUN@sha256:HEX`, the pinned form a registry serves by digest.
    pub fn pinned(gun: &Gun, digest: &Digest) -> String {
        format!("{gun}@{digest}")
    }
}

fn check_tag(tag: &str) -> Result<String, ReferenceError> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        && !tag.starts_with(['.', '-']);
    if !valid {
        return Err(ReferenceError::Tag(tag.to_owned()));
    }
    Ok(tag.to_owned())
}

/// Applies Docker's short-name rules.
pub fn normalize_name(name: &str) -> String {
    let first = name.split('/').next().unwrap_or_default();
    let has_registry = name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        name.to_owned()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_names_normalized() {
        assert_eq!(Reference::parse("nginx:1.13.9").unwrap().gun.as_str(), "docker.io/library/nginx");
        assert_eq!(Reference::parse("team/app").unwrap().gun.as_str(), "docker.io/team/app");
        assert_eq!(Reference::parse("docker.io/library/nginx").unwrap().gun.as_str(), "docker.io/library/nginx");
        assert_eq!(Reference::parse("localhost/app:1").unwrap().gun.as_str(), "localhost/app");
    }

    #[test]
    fn registry_port_is_not_a_tag() {
        let reference = Reference::parse("registry.example.com:5000/team/app").unwrap();
        assert_eq!(reference.gun.as_str(), "registry.example.com:5000/team/app");
        assert_eq!(reference.tag, None);
        let tagged = Reference::parse("registry.example.com:5000/team/app:v1").unwrap();
        assert_eq!(tagged.tag.as_deref(), Some("v1"));
    }

    #[test]
    fn digest_references_parse() {
        let hex = "4771d09578c7c6a65299e110b3ee1c0a2592f5ea2618d23e4ffe7a4cab1ce5de";
        let reference = Reference::parse(&format!("nginx@sha256:{hex}")).unwrap();
        assert_eq!(reference.digest.unwrap().hex(), hex);
        assert!(Reference::parse("nginx@sha256:ABC").is_err());
        assert!(Reference::parse("nginx@md5:00").is_err());
    }

    #[test]
    fn bad_tags_rejected() {
        for bad in ["nginx:", "nginx:-x", "nginx:a b", &format!("nginx:{}", "a".repeat(129))] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
