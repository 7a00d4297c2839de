//! `signet key list|generate|import|export`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use signet_client::keystore::KeyRole;
use signet_core::signing::KeyAlgorithm;

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
    /// Print a stored key as encrypted PKCS#8 PEM (still encrypted with its passphrase).
    Export {
        /// Key id.
        key_id: String,
    },
}

fn parse_role(text: &str) -> Result<KeyRole, Failure> {
    KeyRole::parse(text).ok_or_else(|| Failure::usage(anyhow::anyhow!("invalid role {text:?}; use root, targets, snapshot or delegation")))
}

pub fn run(context: &Context, command: KeyCommand) -> CmdResult {
    let store = context.keystore()?;
    match command {
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
        KeyCommand::Export { key_id } => {
            print!("{}", store.export_encrypted_pem(&key_id)?);
        }
    }
    Ok(())
}
