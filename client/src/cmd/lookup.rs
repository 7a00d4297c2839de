//! Consumer commands: lookup, verify and list.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use signet_client::reference::{Digest, Reference};
use signet_core::metadata::TargetFile;
use signet_core::Gun;

use super::{parse_gun, parse_tagged, registry_failure, CmdResult, Context, Failure, OutputFormat};

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Make this root file the trusted root before verifying, as `signet trust import` does.
    #[arg(long, value_name = "FILE")]
    root: Option<PathBuf>,
    /// Trust and store the root the server sends now when none is stored (warns every time).
    #[arg(long)]
    trust_on_first_use: bool,
}

#[derive(Debug, Args)]
pub struct LookupArgs {
    /// GUN:TAG to look up.
    reference: String,
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Image reference NAME:TAG to verify.
    reference: String,
    /// Digest expected for the tag, sha256:HEX. Without it, signet compares the signed digest
    /// with the manifest the registry serves for the tag now and prints NAME@sha256:HEX.
    #[arg(long)]
    digest: Option<String>,
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Repository (GUN).
    gun: String,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Verifies the repository and returns the signed target for `tag`.
pub async fn signed_target(context: &Context, gun: &Gun, tag: &str, trust: &TrustArgs) -> Result<(String, Digest, u64), Failure> {
    let mut updater = context.updater(gun, trust.root.as_ref(), trust.trust_on_first_use).await?;
    updater.use_index(true);
    updater.refresh().await?;
    let found = updater.find_target(tag).await?;
    release_at_exit(updater);
    let Some((role, target)) = found else {
        return Err(Failure::untrusted(anyhow::anyhow!("{gun}:{tag} is not signed")));
    };
    Ok((role.to_string(), target_digest(&target)?, target.length))
}

/// Leaves the verified metadata to be released when the process exits. A command ends right
/// after a lookup, and freeing the parsed trees of a large targets role one allocation at a time
/// would add milliseconds to every lookup for nothing.
fn release_at_exit(updater: signet_client::updater::Updater) {
    std::mem::forget(updater);
}

fn target_digest(target: &TargetFile) -> Result<Digest, Failure> {
    let hex = target.hashes.get("sha256").map(String::as_str).unwrap_or_default();
    Digest::from_sha256_hex(hex).map_err(Failure::untrusted)
}

pub async fn lookup(context: &Context, args: LookupArgs) -> CmdResult {
    let (name, tag) = parse_tagged(&args.reference)?;
    let gun = context.gun_for(&name)?;
    let (role, digest, size) = signed_target(context, &gun, &tag, &args.trust).await?;
    let pinned = Reference::pinned(&name, &digest);
    match context.output {
        OutputFormat::Json => println!(
            "{}",
            json!({"gun": gun.as_str(), "tag": tag, "digest": digest.to_string(), "size": size, "role": role, "reference": pinned})
        ),
        OutputFormat::Text => println!("{pinned}"),
    }
    Ok(())
}

pub async fn verify(context: &Context, args: VerifyArgs) -> CmdResult {
    let (name, tag) = parse_tagged(&args.reference)?;
    let gun = context.gun_for(&name)?;
    let expected = args.digest.as_deref().map(Digest::parse).transpose().map_err(Failure::usage)?;
    let (role, digest, size) = signed_target(context, &gun, &tag, &args.trust).await?;

    let Some(expected) = expected else {
        return verify_against_registry(context, &name, &tag, &digest, size, &role).await;
    };
    if digest != expected {
        return Err(Failure::untrusted(anyhow::anyhow!("{gun}:{tag} is signed as {digest}, not {expected}")));
    }
    match context.output {
        OutputFormat::Json => println!(
            "{}",
            json!({"gun": gun.as_str(), "tag": tag, "digest": digest.to_string(), "size": size, "role": role, "verified": true})
        ),
        OutputFormat::Text => println!("verified {gun}:{tag} {digest}"),
    }
    Ok(())
}

/// Compares the signed digest with the manifest the registry serves for the tag now, and prints
/// the pinned reference to pull.
async fn verify_against_registry(context: &Context, name: &Gun, tag: &str, signed: &Digest, size: u64, role: &str) -> CmdResult {
    let served = context.registry()?.resolve(name, tag).await.map_err(registry_failure)?;
    if served.digest != *signed {
        return Err(Failure::untrusted(anyhow::anyhow!(
            "{name}:{tag} was moved after signing: the signed digest is {signed}, the registry serves {}",
            served.digest
        ))
        .with_hint(format!("pull the signed image by digest, {}, or have the publisher sign the new manifest", Reference::pinned(name, signed))));
    }
    let pinned = Reference::pinned(name, signed);
    match context.output {
        OutputFormat::Json => println!(
            "{}",
            json!({"reference": pinned, "tag": tag, "digest": signed.to_string(), "size": size, "role": role, "media_type": served.media_type, "verified": true})
        ),
        OutputFormat::Text => println!("{pinned}"),
    }
    Ok(())
}

pub async fn list(context: &Context, args: ListArgs) -> CmdResult {
    let gun = parse_gun(&args.gun)?;
    let mut updater = context.updater(&gun, args.trust.root.as_ref(), args.trust.trust_on_first_use).await?;
    updater.refresh().await?;
    let targets = updater.all_targets().await?;
    release_at_exit(updater);

    let mut rows = Vec::new();
    for (tag, (role, target)) in &targets {
        rows.push((tag.clone(), target_digest(target)?, target.length, role.to_string()));
    }
    match context.output {
        OutputFormat::Json => {
            let items: Vec<_> = rows
                .iter()
                .map(|(tag, digest, size, role)| json!({"tag": tag, "digest": digest.to_string(), "size": size, "role": role}))
                .collect();
            println!("{}", json!({"gun": gun.as_str(), "targets": items}));
        }
        OutputFormat::Text => {
            for (tag, digest, size, role) in rows {
                println!("{tag}\t{digest}\t{size}\t{role}");
            }
        }
    }
    Ok(())
}
