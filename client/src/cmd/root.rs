//! `signet root edit|sign|publish`: roots that need signatures from several machines.
//!
//! `edit` writes the unsigned next root to a file, each key holder runs `sign` on that file with
//! their local root key, and `publish` uploads it once the signatures meet both the current
//! root's threshold and the new root's own. The file is plain TUF metadata JSON.

use std::path::PathBuf;

use chrono::Duration;
use clap::Subcommand;
use serde_json::{json, Value};
use signet_client::keystore::KeyRole;
use signet_client::publish::{default_lifetime, next_root, parse_lifetime};
use signet_core::canonical::to_canonical;
use signet_core::metadata::{CheckedRoot, Document, RoleType};
use signet_core::verify::verify_threshold;
use signet_core::RoleName;

use super::publish::listed_key_ids;
use super::{parse_gun, CmdResult, Context, Failure};

#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Write the unsigned next root, with key and threshold changes, to FILE.
    Edit {
        /// Repository (GUN).
        gun: String,
        /// Output file for the next root.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Role to change: root, targets, snapshot or timestamp [default: root].
        #[arg(long, default_value = "root")]
        role: String,
        /// Add the key in this file (a TUF key object, as `signet key export --public` prints it).
        #[arg(long = "add-key", value_name = "KEY_FILE")]
        add_keys: Vec<PathBuf>,
        /// Remove this key id from the role.
        #[arg(long = "remove-key", value_name = "KEY_ID")]
        remove_keys: Vec<String>,
        /// New threshold of the role.
        #[arg(long)]
        threshold: Option<u64>,
        /// Lifetime of the new root [default: 365d].
        #[arg(long, value_parser = parse_lifetime, value_name = "DURATION")]
        expires: Option<Duration>,
    },
    /// Add signatures of the local root keys that the file's root, or the trusted root, lists.
    Sign {
        /// Root file written by `signet root edit`.
        file: PathBuf,
        /// Repository (GUN), to also sign with keys of its trusted root.
        #[arg(long)]
        gun: Option<String>,
    },
    /// Upload a signed root once its signatures meet both thresholds.
    Publish {
        /// Repository (GUN).
        gun: String,
        /// Signed root file.
        file: PathBuf,
    },
}

pub async fn run(context: &Context, command: RootCommand) -> CmdResult {
    match command {
        RootCommand::Edit { gun, file, role, add_keys, remove_keys, threshold, expires } => {
            let gun = parse_gun(&gun)?;
            let mut updater = context.updater(&gun, None, false).await?;
            updater.refresh().await?;
            let current = updater.trusted().root().signed.clone();
            let root = updater.trusted().checked_root();
            let definition = root.role(&role).cloned().ok_or_else(|| Failure::usage(anyhow::anyhow!("invalid role {role:?}")))?;

            let mut keys: Vec<(String, Value)> = definition
                .keyids
                .iter()
                .filter(|id| !remove_keys.contains(id))
                .filter_map(|id| root.root.keys.get(id).map(|key| (id.clone(), key.clone())))
                .collect();
            for path in add_keys {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| Failure::usage(anyhow::Error::new(e).context(format!("failed to read {}", path.display()))))?;
                let key: Value = serde_json::from_str(&text).map_err(|e| Failure::usage(anyhow::Error::new(e).context(format!("{} is not a JSON key object", path.display()))))?;
                signet_core::PublicKey::from_tuf(&key).map_err(Failure::usage)?;
                let id = signet_core::keys::key_id(&key).map_err(Failure::usage)?;
                if !keys.iter().any(|(existing, _)| *existing == id) {
                    keys.push((id, key));
                }
            }
            let threshold = threshold.unwrap_or(definition.threshold);
            if keys.is_empty() || threshold == 0 || threshold > keys.len() as u64 {
                return Err(Failure::usage(anyhow::anyhow!("{role} would have {} key(s) and threshold {threshold}; the threshold must be from 1 to the number of keys", keys.len())));
            }
            let next = next_root(&current, &role, &keys, threshold, chrono::Utc::now(), expires.unwrap_or_else(default_lifetime));
            write_json(&file, &json!({"signed": next, "signatures": []}))?;
            eprintln!("wrote unsigned root version {} to {}; sign it with `signet root sign {}`", next["version"], file.display(), file.display());
            Ok(())
        }
        RootCommand::Sign { file, gun } => {
            let mut envelope = read_json(&file)?;
            let message = to_canonical(&envelope["signed"]).map_err(Failure::usage)?;
            let mut listed: Vec<String> = envelope["signed"]["roles"]["root"]["keyids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect();
            if let Some(gun) = gun {
                let gun = parse_gun(&gun)?;
                let mut updater = context.updater(&gun, None, false).await?;
                updater.refresh().await?;
                listed.extend(listed_key_ids(updater.trusted(), RoleName::ROOT));
            }

            let store = context.keystore()?;
            let signers: Vec<_> = store.list()?.into_iter().filter(|info| info.role == KeyRole::Root && listed.contains(&info.key_id)).collect();
            if signers.is_empty() {
                return Err(Failure::operational(anyhow::anyhow!("no local root key is listed in {}", file.display())));
            }
            let signatures = envelope["signatures"].as_array_mut().ok_or_else(|| Failure::usage(anyhow::anyhow!("{} has no signatures array", file.display())))?;
            for info in signers {
                if signatures.iter().any(|s| s["keyid"] == info.key_id.as_str()) {
                    continue;
                }
                let passphrase = context.new_passphrase_for_unlock(KeyRole::Root, &info.key_id)?;
                let key = store.load(&info.key_id, &passphrase)?;
                let sig = key.sign(&message).map_err(Failure::operational)?;
                signatures.push(json!({"keyid": info.key_id, "sig": hex::encode(sig)}));
                eprintln!("signed with root key {}", info.key_id);
            }
            write_json(&file, &envelope)
        }
        RootCommand::Publish { gun, file } => {
            let gun = parse_gun(&gun)?;
            let bytes = std::fs::read(&file).map_err(|e| Failure::usage(anyhow::Error::new(e).context(format!("failed to read {}", file.display()))))?;
            let mut updater = context.updater(&gun, None, false).await?;
            updater.refresh().await?;

            // Check both thresholds here, so a root short of signatures is reported before upload.
            let document = Document::parse(bytes.clone(), RoleType::Root).map_err(Failure::usage)?;
            let new_root = CheckedRoot::from_document(&document).map_err(Failure::usage)?;
            let old_root = updater.trusted().checked_root();
            for (root, label) in [(old_root, "current root"), (&new_root, "new root")] {
                let definition = root.role(RoleName::ROOT).ok_or_else(|| Failure::usage(anyhow::anyhow!("{label} has no root role")))?;
                verify_threshold(&document, RoleName::ROOT, &format!("{label} keys"), definition, &root.keys)
                    .map_err(|e| Failure::operational(e).with_hint(format!("collect more signatures with `signet root sign {}`", file.display())))?;
            }
            updater.remote().upload(vec![(RoleName::ROOT.to_owned(), bytes)]).await.map_err(Failure::operational)?;
            eprintln!("published root version {} of {gun}", document.version);
            Ok(())
        }
    }
}

fn read_json(path: &PathBuf) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::usage(anyhow::Error::new(e).context(format!("failed to read {}", path.display()))))?;
    serde_json::from_str(&text).map_err(|e| Failure::usage(anyhow::Error::new(e).context(format!("{} is not JSON", path.display()))))
}

fn write_json(path: &PathBuf, value: &Value) -> CmdResult {
    let text = serde_json::to_string_pretty(value).map_err(Failure::operational)?;
    std::fs::write(path, text + "\n").map_err(|e| Failure::operational(anyhow::Error::new(e).context(format!("failed to write {}", path.display()))))
}
