//! `signet key list|generate|import|export`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use signet_client::keystore::KeyRole;
use signet_client::publish::{apply_changes, client_snapshot, default_lifetime, next_root};
use signet_core::signing::{sign_metadata, KeyAlgorithm, SigningKey};
use signet_core::{Gun, RoleName};

use super::publish::{add_local_snapshot, listed_key_ids};
use super::{parse_gun, CmdResult, Context, Failure, OutputFormat};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List stored keys (never the private parts).
    List,
    /// Generate a key.
    Generate {
        /// Role the key is for: root, targets, snapshot or delegation.
        #[arg(long)]
        role: String,
        /// Repository the key is for.
        #[arg(long)]
        gun: Option<String>,
        /// ed25519 or ecdsa.
        #[arg(long, default_value = "ed25519")]
        algorithm: String,
    },
    /// Store an encrypted PKCS#8 PEM key, as printed by `signet key export`.
    Import {
        /// The PEM file.
        file: PathBuf,
        /// Role the key is for.
        #[arg(long)]
        role: String,
        /// Repository the key is for.
        #[arg(long)]
        gun: Option<String>,
    },
    /// Print a stored key as encrypted PKCS#8 PEM (still encrypted with its passphrase), or with
    /// --public its TUF public key object.
    Export {
        /// Key id.
        key_id: String,
        /// Print the public key as a TUF key object instead.
        #[arg(long)]
        public: bool,
    },
    /// Replace the key of a role and publish the next root (and, for targets, re-signed targets).
    Rotate {
        /// Repository (GUN).
        gun: String,
        /// root, targets, timestamp or snapshot. Timestamp and snapshot keys are created by the
        /// server; root and targets keys locally.
        role: String,
        /// Use this encrypted PKCS#8 PEM key (root or targets) instead of generating one.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// For snapshot: switch to a new key held by this client instead of the server. From then
        /// on every publish signs and uploads the snapshot.
        #[arg(long)]
        local: bool,
    },
}

fn parse_role(text: &str) -> Result<KeyRole, Failure> {
    KeyRole::parse(text).ok_or_else(|| Failure::usage(anyhow::anyhow!("invalid role {text:?}; use root, targets, snapshot or delegation")))
}

pub async fn run(context: &Context, command: KeyCommand) -> CmdResult {
    let store = context.keystore()?;
    match command {
        KeyCommand::Rotate { gun, role, key, local } => return rotate(context, &gun, &role, key, local).await,
        KeyCommand::List => {
            let keys = store.list()?;
            match context.output {
                OutputFormat::Json => {
                    let items: Vec<_> = keys
                        .iter()
                        .map(|k| json!({"key_id": k.key_id, "role": k.role.name(), "gun": k.gun.as_ref().map(|g| g.as_str()), "algorithm": k.algorithm.name()}))
                        .collect();
                    println!("{}", json!({"keys": items}));
                }
                OutputFormat::Text => {
                    for key in keys {
                        let gun = key.gun.as_ref().map_or("-", |g| g.as_str());
                        println!("{}\t{}\t{}\t{}", key.key_id, key.role.name(), gun, key.algorithm.name());
                    }
                }
            }
        }
        KeyCommand::Generate { role, gun, algorithm } => {
            let role = parse_role(&role)?;
            let gun = gun.as_deref().map(parse_gun).transpose()?;
            let algorithm = KeyAlgorithm::parse(&algorithm)
                .ok_or_else(|| Failure::usage(anyhow::anyhow!("invalid algorithm {algorithm:?}; use ed25519 or ecdsa")))?;
            let passphrase = context.new_passphrase(role, &format!("new {} key", role.name()))?;
            let (info, _) = store.generate(role, gun.as_ref(), algorithm, &passphrase)?;
            println!("{}", info.key_id);
        }
        KeyCommand::Import { file, role, gun } => {
            let role = parse_role(&role)?;
            let gun = gun.as_deref().map(parse_gun).transpose()?;
            let pem = std::fs::read_to_string(&file)
                .map_err(|e| Failure::usage(anyhow::Error::new(e).context(format!("failed to read {}", file.display()))))?;
            let label = format!("imported {} key", role.name());
            let passphrase = context.new_passphrase_for_unlock(role, &label)?;
            let info = store.import_encrypted_pem(&pem, role, gun.as_ref(), &passphrase)?;
            println!("{}", info.key_id);
        }
        KeyCommand::Export { key_id, public: true } => {
            let info = store.list()?.into_iter().find(|info| info.key_id == key_id);
            let info = info.ok_or_else(|| Failure::operational(anyhow::anyhow!("no key {key_id} in {}", store.dir().display())))?;
            println!("{}", info.public_key);
        }
        KeyCommand::Export { key_id, public: false } => {
            print!("{}", store.export_encrypted_pem(&key_id)?);
        }
    }
    Ok(())
}

/// Publishes root N+1 with a new key for `role`, signed by the current root keys (and by the
/// new root key when the root key itself rotates).
async fn rotate(context: &Context, gun: &str, role: &str, key_file: Option<PathBuf>, local: bool) -> CmdResult {
    let gun = parse_gun(gun)?;
    let mut updater = context.updater(&gun, None, false).await?;
    updater.refresh().await?;
    let current_root = updater.trusted().root().signed.clone();
    let root_ids = listed_key_ids(updater.trusted(), RoleName::ROOT);
    let root_key = context.unlock(KeyRole::Root, &gun, &root_ids)?;
    let now = chrono::Utc::now();

    if local && role != RoleName::SNAPSHOT {
        return Err(Failure::usage(anyhow::anyhow!("--local applies to snapshot only; root and targets keys are always local and the server always signs timestamps")));
    }
    let (new_key_id, parts) = match role {
        RoleName::SNAPSHOT if local => {
            let new_key = new_role_key(context, KeyRole::Snapshot, &gun, key_file)?;
            let next = next_root(&current_root, RoleName::SNAPSHOT, &[(new_key.key_id().to_owned(), new_key.tuf_key().clone())], 1, now, default_lifetime());
            let root_bytes = sign_metadata(&next, &[&root_key]).map_err(Failure::operational)?;
            // The server no longer signs snapshots, so this upload carries the first one.
            let snapshot = client_snapshot(updater.trusted(), &[], now).map_err(Failure::operational)?;
            let snapshot_bytes = sign_metadata(&snapshot, &[&new_key]).map_err(Failure::operational)?;
            (new_key.key_id().to_owned(), vec![(RoleName::ROOT.to_owned(), root_bytes), (RoleName::SNAPSHOT.to_owned(), snapshot_bytes)])
        }
        RoleName::TIMESTAMP | RoleName::SNAPSHOT => {
            if key_file.is_some() {
                return Err(Failure::usage(anyhow::anyhow!("--key applies to root and targets; the server creates {role} keys")));
            }
            let key = updater.remote().rotate_server_key(role).await.map_err(Failure::operational)?;
            let key_id = signet_core::keys::key_id(&key).map_err(Failure::operational)?;
            let next = next_root(&current_root, role, &[(key_id.clone(), key)], 1, now, default_lifetime());
            let root_bytes = sign_metadata(&next, &[&root_key]).map_err(Failure::operational)?;
            (key_id, vec![(RoleName::ROOT.to_owned(), root_bytes)])
        }
        RoleName::TARGETS => {
            let new_key = new_role_key(context, KeyRole::Targets, &gun, key_file)?;
            let next = next_root(&current_root, RoleName::TARGETS, &[(new_key.key_id().to_owned(), new_key.tuf_key().clone())], 1, now, default_lifetime());
            let root_bytes = sign_metadata(&next, &[&root_key]).map_err(Failure::operational)?;
            let current_targets = updater
                .trusted()
                .targets(&RoleName::targets())
                .map(|(document, _)| document.signed.clone())
                .ok_or_else(|| Failure::operational(anyhow::anyhow!("no trusted targets role for {gun}")))?;
            let targets = apply_changes(&current_targets, &[], now, default_lifetime());
            let targets_bytes = sign_metadata(&targets, &[&new_key]).map_err(Failure::operational)?;
            let mut parts = vec![(RoleName::ROOT.to_owned(), root_bytes), (RoleName::TARGETS.to_owned(), targets_bytes.clone())];
            add_local_snapshot(context, &gun, updater.trusted(), &targets_bytes, &mut parts)?;
            (new_key.key_id().to_owned(), parts)
        }
        RoleName::ROOT => {
            let new_key = new_role_key(context, KeyRole::Root, &gun, key_file)?;
            let next = next_root(&current_root, RoleName::ROOT, &[(new_key.key_id().to_owned(), new_key.tuf_key().clone())], 1, now, default_lifetime());
            // TUF 5.3.4: the new root is signed by the old root keys and by its own.
            let root_bytes = sign_metadata(&next, &[&root_key, &new_key]).map_err(Failure::operational)?;
            (new_key.key_id().to_owned(), vec![(RoleName::ROOT.to_owned(), root_bytes)])
        }
        other => return Err(Failure::usage(anyhow::anyhow!("invalid role {other:?}; use root, targets, timestamp or snapshot"))),
    };

    updater.remote().upload(parts).await.map_err(Failure::operational)?;
    match context.output {
        OutputFormat::Json => println!("{}", json!({"gun": gun.as_str(), "role": role, "key_id": new_key_id})),
        OutputFormat::Text => println!("{new_key_id}"),
    }
    eprintln!("rotated the {role} key of {gun}; root version {} is published", current_root["version"].as_u64().unwrap_or(0) + 1);
    Ok(())
}

/// Creates the new local key of a rotation, generated or imported from an encrypted PEM file.
fn new_role_key(context: &Context, role: KeyRole, gun: &Gun, key_file: Option<PathBuf>) -> Result<SigningKey, Failure> {
    let store = context.keystore()?;
    match key_file {
        Some(file) => {
            let pem = std::fs::read_to_string(&file)
                .map_err(|e| Failure::usage(anyhow::Error::new(e).context(format!("failed to read {}", file.display()))))?;
            let passphrase = context.new_passphrase_for_unlock(role, "new key")?;
            let info = store.import_encrypted_pem(&pem, role, Some(gun), &passphrase)?;
            Ok(store.load(&info.key_id, &passphrase)?)
        }
        None => {
            let passphrase = context.new_passphrase(role, &format!("new {} key for {gun}", role.name()))?;
            Ok(store.generate(role, Some(gun), KeyAlgorithm::Ed25519, &passphrase)?.1)
        }
    }
}
