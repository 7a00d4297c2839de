//! Publisher commands: init, sign, unsign, publish, status, reset and delete.

use chrono::Duration;
use clap::Args;
use serde_json::json;
use signet_client::keystore::KeyRole;
use signet_client::publish::{apply_changes, default_lifetime, empty_targets, initial_root, next_root, parse_lifetime, publish_changes};
use signet_client::reference::Digest;
use signet_client::state::Change;
use signet_core::signing::{sign_metadata, KeyAlgorithm};
use signet_core::RoleName;

use super::{parse_gun, parse_tagged, registry_failure, CmdResult, Context, Failure, OutputFormat};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Repository (GUN), such as registry.example.com/team/app.
    gun: String,
    /// Reuse this stored root key (key id) instead of generating one.
    #[arg(long, value_name = "KEY_ID")]
    root_key: Option<String>,
    /// Generate ECDSA P-256 keys instead of Ed25519.
    #[arg(long)]
    ecdsa: bool,
    /// Lifetime of root version 1 and targets version 1, such as 365d [default: 365d].
    #[arg(long, value_parser = parse_lifetime, value_name = "DURATION")]
    expires: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Image reference NAME:TAG. Without --digest, signet reads the digest, size and media type
    /// of the manifest that the registry serves for the tag now.
    reference: String,
    /// Manifest digest the tag points to, sha256:HEX; no registry is contacted.
    #[arg(long, requires = "size")]
    digest: Option<String>,
    /// Manifest size in bytes, with --digest.
    #[arg(long, requires = "digest")]
    size: Option<u64>,
    /// Manifest media type, stored in the target's custom data, with --digest.
    #[arg(long, requires = "digest")]
    media_type: Option<String>,
    /// Stage the change instead of publishing it.
    #[arg(long)]
    no_publish: bool,
    /// Lifetime of the signed targets role, such as 365d or 12h [default: 365d].
    #[arg(long, value_parser = parse_lifetime, value_name = "DURATION")]
    expires: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct UnsignArgs {
    /// GUN:TAG to remove.
    reference: String,
    /// Stage the change instead of publishing it.
    #[arg(long)]
    no_publish: bool,
    /// Lifetime of the signed targets role, such as 365d or 12h [default: 365d].
    #[arg(long, value_parser = parse_lifetime, value_name = "DURATION")]
    expires: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Repository (GUN).
    gun: String,
    /// Lifetime of the signed targets role, such as 365d or 12h [default: 365d].
    #[arg(long, value_parser = parse_lifetime, value_name = "DURATION")]
    expires: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ResignArgs {
    /// Repository (GUN).
    gun: String,
    /// root or targets.
    role: String,
    /// Lifetime of the re-signed role [default: 365d].
    #[arg(long, value_parser = parse_lifetime, value_name = "DURATION")]
    expires: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Repository (GUN).
    gun: String,
    /// Warn about roles that expire within this time [default: 30d].
    #[arg(long, value_parser = parse_lifetime, value_name = "DURATION")]
    warn_within: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct GunArgs {
    /// Repository (GUN).
    gun: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Repository (GUN).
    gun: String,
    /// Also delete the repository's metadata on the server.
    #[arg(long)]
    remote: bool,
}

pub async fn init(context: &Context, args: InitArgs) -> CmdResult {
    let gun = parse_gun(&args.gun)?;
    let store = context.keystore()?;
    let algorithm = if args.ecdsa { KeyAlgorithm::EcdsaP256 } else { KeyAlgorithm::Ed25519 };
    let remote = context.remote(&gun)?;

    context.progress("fetching the server's timestamp and snapshot keys");
    let timestamp_key = remote.server_key("timestamp").await.map_err(Failure::operational)?;
    let snapshot_key = remote.server_key("snapshot").await.map_err(Failure::operational)?;

    let root_key = match &args.root_key {
        Some(key_id) => {
            let passphrase = context.new_passphrase_for_unlock(KeyRole::Root, key_id)?;
            store.load(key_id, &passphrase)?
        }
        None => {
            let passphrase = context.new_passphrase(KeyRole::Root, &format!("new root key for {gun}"))?;
            store.generate(KeyRole::Root, Some(&gun), algorithm, &passphrase)?.1
        }
    };
    let targets_passphrase = context.new_passphrase(KeyRole::Targets, &format!("new targets key for {gun}"))?;
    let (_, targets_key) = store.generate(KeyRole::Targets, Some(&gun), algorithm, &targets_passphrase)?;

    let now = chrono::Utc::now();
    let lifetime = args.expires.unwrap_or_else(default_lifetime);
    let root = initial_root(&root_key, &targets_key, &snapshot_key, &timestamp_key, now, lifetime).map_err(Failure::operational)?;
    let root_bytes = sign_metadata(&root, &[&root_key]).map_err(Failure::operational)?;
    let targets_bytes = sign_metadata(&empty_targets(1, now, lifetime), &[&targets_key]).map_err(Failure::operational)?;
    remote
        .upload(vec![(RoleName::ROOT.to_owned(), root_bytes.clone()), (RoleName::TARGETS.to_owned(), targets_bytes)])
        .await
        .map_err(Failure::operational)?;

    let state = context.state(&gun);
    state.metadata().write(&RoleName::root(), &root_bytes).map_err(Failure::operational)?;
    match context.output {
        OutputFormat::Json => println!("{}", json!({"gun": gun.as_str(), "root_key_id": root_key.key_id()})),
        OutputFormat::Text => println!("{}", root_key.key_id()),
    }
    eprintln!("initialized {gun}; share the root with consumers: signet trust export {gun} > root.json");
    Ok(())
}

pub async fn sign(context: &Context, args: SignArgs) -> CmdResult {
    let (name, tag) = parse_tagged(&args.reference)?;
    let (digest, size, media_type) = match (&args.digest, args.size) {
        (Some(digest), Some(size)) => (Digest::parse(digest).map_err(Failure::usage)?, size, args.media_type),
        _ => {
            let manifest = context.registry()?.resolve(&name, &tag).await.map_err(registry_failure)?;
            eprintln!("{name}:{tag} is {} ({} bytes, {}) in the registry", manifest.digest, manifest.size, manifest.media_type);
            (manifest.digest, manifest.size, Some(manifest.media_type))
        }
    };
    let gun = context.gun_for(&name)?;
    let change = Change::Add { tag: tag.clone(), digest: digest.to_string(), size, media_type };
    if args.no_publish {
        context.state(&gun).stage(change).map_err(Failure::operational)?;
        eprintln!("staged {gun}:{tag} -> {digest}; run `signet publish {gun}`");
        return Ok(());
    }
    stage_and_publish(context, &gun, change, args.expires).await
}

/// Stages `change` and publishes everything staged. When the publish fails, the staged changes
/// are put back as they were, so the failed change is not published later by surprise.
async fn stage_and_publish(context: &Context, gun: &signet_core::Gun, change: Change, expires: Option<Duration>) -> CmdResult {
    let state = context.state(gun);
    let before = state.staged().map_err(Failure::operational)?;
    state.stage(change).map_err(Failure::operational)?;
    let result = publish_staged(context, gun, expires).await;
    if result.is_err() {
        if let Err(error) = state.restore(&before) {
            eprintln!("warning: failed to restore the staged changes of {gun}: {error}");
        }
    }
    result
}

pub async fn unsign(context: &Context, args: UnsignArgs) -> CmdResult {
    let (gun, tag) = parse_tagged(&args.reference)?;
    let change = Change::Remove { tag: tag.clone() };
    if args.no_publish {
        context.state(&gun).stage(change).map_err(Failure::operational)?;
        eprintln!("staged removal of {gun}:{tag}; run `signet publish {gun}`");
        return Ok(());
    }
    stage_and_publish(context, &gun, change, args.expires).await
}

pub async fn publish(context: &Context, args: PublishArgs) -> CmdResult {
    let gun = parse_gun(&args.gun)?;
    publish_staged(context, &gun, args.expires).await
}

async fn publish_staged(context: &Context, gun: &signet_core::Gun, expires: Option<Duration>) -> CmdResult {
    let state = context.state(gun);
    let changes = state.staged().map_err(Failure::operational)?;
    if changes.is_empty() {
        eprintln!("nothing staged for {gun}");
        return Ok(());
    }
    let mut updater = context.updater(gun, None, false).await?;
    updater.refresh().await?;
    let listed = listed_key_ids(updater.trusted(), RoleName::TARGETS);
    let targets_key = context.unlock(KeyRole::Targets, gun, &listed)?;
    let snapshot_key = local_snapshot_key(context, gun, updater.trusted())?;
    let lifetime = expires.unwrap_or_else(default_lifetime);
    let version = match publish_changes(&mut updater, &changes, &targets_key, snapshot_key.as_ref(), lifetime).await {
        Ok(version) => version,
        Err(signet_client::publish::PublishError::Update(error)) => return Err(error.into()),
        Err(error) => return Err(Failure::operational(error)),
    };
    state.reset().map_err(Failure::operational)?;
    eprintln!("published targets version {version} of {gun} ({} change(s))", changes.len());
    Ok(())
}

/// Unlocks the local snapshot key when root lists one that this home holds; `None` when the
/// server signs snapshots.
pub fn local_snapshot_key(context: &Context, gun: &signet_core::Gun, trusted: &signet_core::trusted::TrustedSet) -> Result<Option<signet_core::signing::SigningKey>, Failure> {
    let listed = listed_key_ids(trusted, RoleName::SNAPSHOT);
    let store = context.keystore()?;
    let held = store.list()?.into_iter().any(|info| info.role == KeyRole::Snapshot && listed.contains(&info.key_id));
    if !held {
        return Ok(None);
    }
    Ok(Some(context.unlock(KeyRole::Snapshot, gun, &listed)?))
}

/// Adds a snapshot signed by the local snapshot key to `parts` when the client has the
/// repository's snapshot key; `targets_bytes` is the new top-level targets file.
pub fn add_local_snapshot(
    context: &Context,
    gun: &signet_core::Gun,
    trusted: &signet_core::trusted::TrustedSet,
    targets_bytes: &[u8],
    parts: &mut Vec<(String, Vec<u8>)>,
) -> CmdResult {
    let Some(snapshot_key) = local_snapshot_key(context, gun, trusted)? else {
        return Ok(());
    };
    let snapshot = signet_client::publish::client_snapshot(trusted, &[(RoleName::targets(), targets_bytes)], chrono::Utc::now())
        .map_err(Failure::operational)?;
    parts.push((RoleName::SNAPSHOT.to_owned(), sign_metadata(&snapshot, &[&snapshot_key]).map_err(Failure::operational)?));
    Ok(())
}

/// Key ids root lists for a top-level role.
pub fn listed_key_ids(trusted: &signet_core::trusted::TrustedSet, role: &str) -> Vec<String> {
    trusted.checked_root().role(role).map(|definition| definition.keyids.clone()).unwrap_or_default()
}

/// Shows staged changes and, when the repository is trusted, every role's version, expiry and
/// key ids, with a warning for roles that expire soon.
pub async fn status(context: &Context, args: StatusArgs) -> CmdResult {
    let gun = parse_gun(&args.gun)?;
    let state = context.state(&gun);
    let changes = state.staged().map_err(Failure::operational)?;
    let warn_within = args.warn_within.unwrap_or_else(|| Duration::days(30));

    let mut roles = Vec::new();
    if state.has_trusted_root() {
        let mut updater = context.updater(&gun, None, false).await?;
        updater.refresh().await?;
        let trusted = updater.trusted();
        let root = trusted.checked_root();
        let documents = [
            (RoleName::ROOT, Some(trusted.root())),
            (RoleName::TARGETS, trusted.targets(&RoleName::targets()).map(|(document, _)| document)),
            (RoleName::SNAPSHOT, trusted.snapshot()),
            (RoleName::TIMESTAMP, trusted.timestamp()),
        ];
        for (role, document) in documents {
            let Some(document) = document else { continue };
            let key_ids = root.role(role).map(|definition| definition.keyids.clone()).unwrap_or_default();
            let expiring = document.expires - chrono::Utc::now() < warn_within;
            // The server re-signs timestamp and snapshot long before they expire, so only the
            // roles a key holder re-signs get a warning.
            let client_signed = role == RoleName::ROOT || role == RoleName::TARGETS;
            if expiring && client_signed {
                eprintln!("warning: {role} of {gun} expires at {}; re-sign it with `signet resign {gun} {role}`", signet_core::metadata::format_expires(document.expires));
            }
            roles.push((role, document.version, signet_core::metadata::format_expires(document.expires), key_ids, expiring));
        }
    }

    match context.output {
        OutputFormat::Json => {
            let roles: Vec<_> = roles
                .iter()
                .map(|(role, version, expires, key_ids, expiring)| {
                    json!({"role": role, "version": version, "expires": expires, "key_ids": key_ids, "expires_soon": expiring})
                })
                .collect();
            println!("{}", json!({"gun": gun.as_str(), "roles": roles, "staged": changes}));
        }
        OutputFormat::Text => {
            for (role, version, expires, key_ids, _) in &roles {
                println!("{role:<10} version {version:<6} expires {expires}  keys {}", key_ids.join(","));
            }
            if changes.is_empty() {
                println!("no staged changes for {gun}");
            }
            for change in changes {
                match change {
                    Change::Add { tag, digest, size, .. } => println!("sign   {tag} {digest} {size}"),
                    Change::Remove { tag } => println!("unsign {tag}"),
                }
            }
        }
    }
    Ok(())
}

/// Re-signs root or targets with a new version and expiry, content unchanged.
pub async fn resign(context: &Context, args: ResignArgs) -> CmdResult {
    let gun = parse_gun(&args.gun)?;
    let lifetime = args.expires.unwrap_or_else(default_lifetime);
    let mut updater = context.updater(&gun, None, false).await?;
    updater.refresh().await?;
    let now = chrono::Utc::now();

    let (role, bytes, version) = match args.role.as_str() {
        RoleName::ROOT => {
            let current = updater.trusted().root().signed.clone();
            let root = updater.trusted().checked_root().clone();
            let definition = root.role(RoleName::ROOT).cloned().unwrap_or(signet_core::metadata::RoleKeys { keyids: vec![], threshold: 1 });
            let keys: Vec<(String, serde_json::Value)> = definition.keyids.iter().filter_map(|id| root.root.keys.get(id).map(|key| (id.clone(), key.clone()))).collect();
            let next = next_root(&current, RoleName::ROOT, &keys, definition.threshold, now, lifetime);
            let root_key = context.unlock(KeyRole::Root, &gun, &definition.keyids)?;
            let version = next["version"].as_u64().unwrap_or_default();
            (RoleName::ROOT, sign_metadata(&next, &[&root_key]).map_err(Failure::operational)?, version)
        }
        RoleName::TARGETS => {
            let current = updater
                .trusted()
                .targets(&RoleName::targets())
                .map(|(document, _)| document.signed.clone())
                .ok_or_else(|| Failure::operational(anyhow::anyhow!("no trusted targets role for {gun}")))?;
            let next = apply_changes(&current, &[], now, lifetime);
            let targets_key = context.unlock(KeyRole::Targets, &gun, &listed_key_ids(updater.trusted(), RoleName::TARGETS))?;
            let version = next["version"].as_u64().unwrap_or_default();
            (RoleName::TARGETS, sign_metadata(&next, &[&targets_key]).map_err(Failure::operational)?, version)
        }
        other => return Err(Failure::usage(anyhow::anyhow!("cannot re-sign {other:?}: the client signs root and targets; the server re-signs snapshot and timestamp"))),
    };
    let mut parts = vec![(role.to_owned(), bytes.clone())];
    if role == RoleName::TARGETS {
        add_local_snapshot(context, &gun, updater.trusted(), &bytes, &mut parts)?;
    }
    updater.remote().upload(parts).await.map_err(Failure::operational)?;
    eprintln!("re-signed {role} of {gun} as version {version}, expiring in {} days", lifetime.num_days());
    Ok(())
}

pub fn reset(context: &Context, args: GunArgs) -> CmdResult {
    let gun = parse_gun(&args.gun)?;
    context.state(&gun).reset().map_err(Failure::operational)?;
    eprintln!("dropped staged changes for {gun}");
    Ok(())
}

pub async fn delete(context: &Context, args: DeleteArgs) -> CmdResult {
    let gun = parse_gun(&args.gun)?;
    if args.remote {
        context.remote(&gun)?.delete().await.map_err(Failure::operational)?;
        eprintln!("deleted {gun} on {}", context.server);
    }
    context.state(&gun).delete().map_err(Failure::operational)?;
    eprintln!("deleted local state of {gun}");
    Ok(())
}
