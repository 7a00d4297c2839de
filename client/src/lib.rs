//! Signet client library. The `signet` command and its verification workflow live here.

pub mod auth;
pub mod keystore;
pub mod passphrase;
pub mod pin;
pub mod publish;
pub mod reference;
pub mod registry;
pub mod remote;
pub mod state;
pub mod updater;
