//! Repository names (GUNs) and role names, parsed once at the edge so the rest of the code can
//! trust them.

use std::fmt;

/// Maximum length of a GUN in bytes, as for OCI repository names.
pub const MAX_GUN_LEN: usize = 255;

/// Maximum length of a delegated role name in bytes.
pub const MAX_ROLE_NAME_LEN: usize = 255;

/// Error for a rejected name. Messages state the rule so a caller can fix the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid repository name {name:?}: {reason}. A repository name is an OCI repository name with an optional registry host and port, such as registry.example.com:5000/team/app: lowercase path components of [a-z0-9] separated by '.', '_', '__' or '-', joined by '/', at most 255 bytes")]
    InvalidGun { name: String, reason: &'static str },

    #[error("invalid role name {name:?}: {reason}. A role is root, targets, snapshot, timestamp or a delegated role named by segments of [A-Za-z0-9_-] joined by '/', at most 255 bytes")]
    InvalidRole { name: String, reason: &'static str },
}

/// A validated repository name ("globally unique name"), such as `registry.example.com/team/app`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gun(String);

impl Gun {
    /// Parses an OCI repository name with an optional `host[:port]/` prefix.
    pub fn parse(name: &str) -> Result<Gun, NameError> {
        let invalid = |reason| NameError::InvalidGun { name: truncate(name), reason };

        if name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if name.len() > MAX_GUN_LEN {
            return Err(invalid("the name is longer than 255 bytes"));
        }

        let components: Vec<&str> = name.split('/').collect();
        let mut path = &components[..];
        let first = components[0];
        let has_host =
            components.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
        if has_host {
            check_host(first).map_err(invalid)?;
            path = &components[1..];
        }
        for component in path {
            check_path_component(component).map_err(invalid)?;
        }
        Ok(Gun(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_host(host: &str) -> Result<(), &'static str> {
    let (domain, port) = match host.split_once(':') {
        Some((domain, port)) => (domain, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port {
        let valid_port = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid_port {
            return Err("the registry port must be a number from 1 to 65535");
        }
    }
    for label in domain.split('.') {
        let bytes = label.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-';
        if !valid {
            return Err("the registry host must be lowercase DNS labels of [a-z0-9-] separated by '.'");
        }
    }
    Ok(())
}

fn check_path_component(component: &str) -> Result<(), &'static str> {
    const REASON: &str = "a path component is empty, has a character other than [a-z0-9._-], or starts, ends or joins with a separator other than '.', '_', '__' or '-'";
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return Err(REASON);
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            expect_alnum = false;
            i += 1;
            continue;
        }
        if expect_alnum {
            return Err(REASON);
        }
        // A separator: ".", "_", "__" or "-", followed by an alphanumeric character.
        let separator_len = match bytes[i] {
            b'.' | b'-' => 1,
            b'_' if bytes.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            _ => return Err(REASON),
        };
        i += separator_len;
        expect_alnum = true;
    }
    if expect_alnum {
        return Err(REASON);
    }
    Ok(())
}

/// A TUF role name: one of the four top-level roles or a delegated targets role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleName(String);

impl RoleName {
    pub const ROOT: &'static str = "root";
    pub const TARGETS: &'static str = "targets";
    pub const SNAPSHOT: &'static str = "snapshot";
    pub const TIMESTAMP: &'static str = "timestamp";

    /// Parses a role name. Delegated names exclude `.` so that `N.ROLE.json` and
    /// `ROLE.HASH.json` file names are never ambiguous.
    pub fn parse(name: &str) -> Result<RoleName, NameError> {
        let invalid = |reason| NameError::InvalidRole { name: truncate(name), reason };

        if name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if name.len() > MAX_ROLE_NAME_LEN {
            return Err(invalid("the name is longer than 255 bytes"));
        }
        for segment in name.split('/') {
            let valid = !segment.is_empty()
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(invalid("a segment is empty or has a character other than [A-Za-z0-9_-]"));
            }
        }
        Ok(RoleName(name.to_owned()))
    }

    pub fn root() -> RoleName {
        RoleName(Self::ROOT.to_owned())
    }

    pub fn targets() -> RoleName {
        RoleName(Self::TARGETS.to_owned())
    }

    pub fn snapshot() -> RoleName {
        RoleName(Self::SNAPSHOT.to_owned())
    }

    pub fn timestamp() -> RoleName {
        RoleName(Self::TIMESTAMP.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `targets` and every delegated role: the roles listed in snapshot metadata.
    pub fn is_targets_like(&self) -> bool {
        !matches!(self.0.as_str(), Self::ROOT | Self::SNAPSHOT | Self::TIMESTAMP)
    }

    /// True for a delegated targets role (not one of the four top-level roles).
    pub fn is_delegated(&self) -> bool {
        !matches!(self.0.as_str(), Self::ROOT | Self::TARGETS | Self::SNAPSHOT | Self::TIMESTAMP)
    }

    /// Returns the file name of this role in snapshot `meta`, such as `targets.json`.
    pub fn meta_file_name(&self) -> String {
        format!("{}.json", self.0)
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shortens a rejected name for error messages so a huge input cannot flood logs.
fn truncate(name: &str) -> String {
    const MAX: usize = 300;
    if name.len() <= MAX {
        return name.to_owned();
    }
    let mut end = MAX;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &name[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gun_accepts_registry_names() {
        for name in [
            "registry.example.com:5000/team/app",
            "example.com/library/nginx",
            "team/app",
            "nginx",
            "localhost/app",
            "docker.io/library/my_app__v2.x-y",
            "a.b",
        ] {
            assert!(Gun::parse(name).is_ok(), "{name} should be valid");
        }
    }

    #[test]
    fn gun_rejects_bad_names() {
        for name in [
            "",
            "Team/app",
            "team//app",
            "team/app/",
            "/team/app",
            "team/-app",
            "team/app-",
            "team/a___b",
            "team/a..b",
            "registry.example.com:0/app",
            "registry.example.com:99999/app",
            "registry.example.com:/app",
            "Registry.example.com/app",
            "team/app:tag",
            "team/app@sha256",
            "team/app%2f",
            "team/ app",
            "team/äpp",
        ] {
            assert!(Gun::parse(name).is_err(), "{name:?} should be rejected");
        }
        assert!(Gun::parse(&"a".repeat(256)).is_err());
        assert!(Gun::parse(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn gun_error_states_rule() {
        let err = Gun::parse("Team/App").unwrap_err().to_string();
        assert!(err.contains("lowercase path components"), "{err}");
    }

    #[test]
    fn role_names() {
        for name in ["root", "targets", "targets/releases", "bins-0a", "a_b/C-d"] {
            assert!(RoleName::parse(name).is_ok(), "{name}");
        }
        for name in ["", "a//b", "/a", "a/", "a.b", "1.targets", "a b", "a%2Fb", "..", "é"] {
            assert!(RoleName::parse(name).is_err(), "{name:?}");
        }
        assert!(RoleName::parse("targets/releases").unwrap().is_delegated());
        assert!(!RoleName::targets().is_delegated());
        assert!(RoleName::targets().is_targets_like());
        assert!(!RoleName::snapshot().is_targets_like());
    }
}
