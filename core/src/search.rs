//! Target search through delegations (TUF 1.0.34 section 5.6.7), as a step machine.
//!
//! The search is a pre-order depth-first walk from the top-level targets role. Delegated roles
//! are loaded lazily: when the walk reaches a role that is not loaded yet, [`TargetSearch::next`]
//! returns [`SearchStep::Load`], the caller downloads and verifies that role into the
//! [`TrustedSet`], and calls `next` again. A role whose delegation does not match the target
//! is never visited, so the target is within the paths of every role on its chain. A matching
//! terminating delegation ends the search after its subtree.

use std::collections::BTreeSet;

use crate::metadata::TargetFile;
use crate::names::RoleName;
use crate::trusted::{TrustedSet, VerifyError};

/// Maximum number of roles one search visits, against delegation graphs built to exhaust
/// clients. python-tuf uses the same default.
pub const MAX_DELEGATIONS: usize = 32;

/// Next step of a search for the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchStep {
    /// Download and verify `role`, delegated by `delegator`, then call `next` again.
    Load { role: RoleName, delegator: RoleName },
    /// The target, as `role` lists it.
    Found { role: RoleName, target: TargetFile },
    /// No role on any matching chain lists the target.
    NotFound,
}

impl PartialEq for TargetFile {
    fn eq(&self, other: &TargetFile) -> bool {
        self.length == other.length && self.hashes == other.hashes && self.custom == other.custom
    }
}

/// The state of one target search.
#[derive(Debug, Clone)]
pub struct TargetSearch {
    name: String,
    to_visit: Vec<(RoleName, Option<RoleName>)>,
    visited: BTreeSet<RoleName>,
}

impl TargetSearch {
    pub fn new(name: &str) -> TargetSearch {
        TargetSearch { name: name.to_owned(), to_visit: vec![(RoleName::targets(), None)], visited: BTreeSet::new() }
    }

    /// Advances the search until it needs a role loaded, finds the target, or ends. Fails only
    /// when a role accepted through an index contains an unreadable entry.
    pub fn next(&mut self, set: &TrustedSet) -> Result<SearchStep, VerifyError> {
        while let Some((role, delegator)) = self.to_visit.pop() {
            if self.visited.contains(&role) {
                continue;
            }
            if self.visited.len() >= MAX_DELEGATIONS {
                return Ok(SearchStep::NotFound);
            }
            let Some(found) = set.find_in_role(&role, &self.name) else {
                // Not loaded yet: come back to this role after the caller loads it. The top-level
                // targets role has no delegator and is loaded before any search.
                let Some(delegator) = delegator.clone() else {
                    return Ok(SearchStep::NotFound);
                };
                self.to_visit.push((role.clone(), Some(delegator.clone())));
                return Ok(SearchStep::Load { role, delegator });
            };
            self.visited.insert(role.clone());

            if let Some(target) = found? {
                return Ok(SearchStep::Found { role, target });
            }

            let mut children = Vec::new();
            for delegation in set.delegations(&role) {
                if !delegation.matches(&self.name) {
                    continue;
                }
                let Ok(child) = RoleName::parse(&delegation.name) else {
                    continue;
                };
                children.push((child, Some(role.clone())));
                if delegation.terminating == Some(true) {
                    // Later delegations, including those of ancestors, are not consulted.
                    self.to_visit.clear();
                    break;
                }
            }
            children.reverse();
            self.to_visit.extend(children);
        }
        Ok(SearchStep::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use serde_json::{json, Value};

    /// Top-level targets delegating to `roles`, given as (name, paths, terminating), all signed
    /// by `delegate`.
    fn delegating(delegate: &crate::signing::SigningKey, roles: &[(&str, &[&str], bool)]) -> Value {
        let mut targets = targets_with(&["top"]);
        let roles: Vec<Value> = roles
            .iter()
            .map(|(name, paths, terminating)| {
                json!({"name": name, "keyids": [delegate.key_id()], "threshold": 1, "paths": paths, "terminating": terminating})
            })
            .collect();
        targets["delegations"] = json!({"keys": {delegate.key_id(): delegate.tuf_key()}, "roles": roles});
        targets
    }

    fn role(name: &str) -> RoleName {
        RoleName::parse(name).unwrap()
    }

    #[test]
    fn finds_top_level_target() {
        let keys = keys();
        let set = trusted_set(&keys, &targets_with(&["latest"]), &[]);
        let step = TargetSearch::new("latest").next(&set).unwrap();
        assert!(matches!(step, SearchStep::Found { role, .. } if role == RoleName::targets()));
        assert_eq!(TargetSearch::new("missing").next(&set).unwrap(), SearchStep::NotFound);
    }

    #[test]
    fn loads_delegated_role_lazily() {
        let keys = keys();
        let delegate = key();
        let mut set = trusted_set(&keys, &delegating(&delegate, &[("a", &["a/*"], false), ("b", &["b/*"], false)]), &["a", "b"]);
        let mut search = TargetSearch::new("b/v1");

        // Role a does not match b/v1, so only b is requested.
        assert_eq!(search.next(&set).unwrap(), SearchStep::Load { role: role("b"), delegator: RoleName::targets() });
        set.update_targets(&role("b"), Some(&RoleName::targets()), signed(&targets_with(&["b/v1"]), &delegate)).unwrap();
        assert!(matches!(search.next(&set).unwrap(), SearchStep::Found { role: found, .. } if found == role("b")));
    }

    #[test]
    fn star_does_not_cross_slash() {
        let keys = keys();
        let delegate = key();
        let set = trusted_set(&keys, &delegating(&delegate, &[("all", &["*"], false)]), &["all"]);
        assert_eq!(TargetSearch::new("team/v1").next(&set).unwrap(), SearchStep::NotFound);
        assert!(matches!(TargetSearch::new("v1").next(&set).unwrap(), SearchStep::Load { .. }));
    }

    #[test]
    fn terminating_delegation_stops_search() {
        let keys = keys();
        let delegate = key();
        let roles: &[(&str, &[&str], bool)] = &[("first", &["v*"], true), ("second", &["v*"], false)];
        let mut set = trusted_set(&keys, &delegating(&delegate, roles), &["first", "second"]);
        set.update_targets(&role("first"), Some(&RoleName::targets()), signed(&targets_with(&[]), &delegate)).unwrap();
        set.update_targets(&role("second"), Some(&RoleName::targets()), signed(&targets_with(&["v1"]), &delegate)).unwrap();

        assert_eq!(TargetSearch::new("v1").next(&set).unwrap(), SearchStep::NotFound);
    }

    #[test]
    fn non_terminating_delegation_continues() {
        let keys = keys();
        let delegate = key();
        let roles: &[(&str, &[&str], bool)] = &[("first", &["v*"], false), ("second", &["v*"], false)];
        let mut set = trusted_set(&keys, &delegating(&delegate, roles), &["first", "second"]);
        set.update_targets(&role("first"), Some(&RoleName::targets()), signed(&targets_with(&[]), &delegate)).unwrap();
        set.update_targets(&role("second"), Some(&RoleName::targets()), signed(&targets_with(&["v1"]), &delegate)).unwrap();

        assert!(matches!(TargetSearch::new("v1").next(&set).unwrap(), SearchStep::Found { role: found, .. } if found == role("second")));
    }
}
