//! Signet core: TUF metadata, canonical JSON, key ids and signature checks.
//!
//! Everything here follows The Update Framework specification version 1.0.34. Spec rules are
//! cited by section where a check enforces them. This crate does no I/O: no HTTP, no database,
//! no environment variables.
//!
//! Signatures are always verified over the canonical JSON of the raw `signed` value received,
//! never over a re-serialized typed struct, so unknown fields stay covered by the signature.

pub mod canonical;
pub mod index;
pub mod keys;
pub mod metadata;
pub mod names;
pub mod search;
pub mod signing;
pub mod trusted;
pub mod upload;
pub mod verify;

#[cfg(test)]
mod testing;

pub use canonical::CanonicalError;
pub use keys::{KeyError, PublicKey};
pub use metadata::{Document, MetadataError, RoleType};
pub use names::{Gun, NameError, RoleName};
