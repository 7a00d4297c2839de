//! `signet pin`: rewrite image references in files to verified digests, or check that they are.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;
use signet_client::pin::{detect_kind, pinned_text, rewrite, scan, Found};
use signet_client::reference::{Digest, Reference};
use signet_client::updater::Updater;
use signet_core::Gun;

use super::{CmdResult, Context, Failure, OutputFormat};

#[derive(Debug, Args)]
pub struct PinArgs {
    /// Kubernetes manifests, Compose files or Dockerfiles.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Change nothing; fail unless every image reference is pinned to the digest signed for it.
    #[arg(long)]
    check: bool,
    /// Leave references to unsigned images, or to repositories with no trusted root, as they
    /// are, with a warning, instead of failing.
    #[arg(long)]
    allow_unsigned: bool,
}

/// The result for one reference.
enum Outcome {
    /// Rewritten (or, with --check, already) pinned to the signed digest.
    Pinned { digest: Digest, new_text: Option<String> },
    /// Not pinned to a verified digest, with the reason.
    Problem { reason: String, unsigned: bool },
}

struct Row {
    file: PathBuf,
    line: usize,
    reference: String,
    outcome: Outcome,
}

/// Verified digests per repository, each repository refreshed once per command.
struct Verifier<'a> {
    context: &'a Context,
    updaters: HashMap<Gun, Updater>,
    signed_digests: HashMap<Gun, BTreeSet<String>>,
}

/// The signed state of one reference's repository and tag.
enum Signed {
    Digest(Digest),
    /// The tag is not signed, or there is no trusted root for the repository.
    Unsigned(String),
}

impl<'a> Verifier<'a> {
    async fn updater(&mut self, gun: &Gun) -> Result<Option<&mut Updater>, Failure> {
        if !self.updaters.contains_key(gun) {
            if !self.context.state(gun).has_trusted_root() {
                return Ok(None);
            }
            let mut updater = self.context.updater(gun, None, false).await?;
            updater.refresh().await?;
            self.updaters.insert(gun.clone(), updater);
        }
        Ok(self.updaters.get_mut(gun))
    }

    async fn tag(&mut self, gun: &Gun, tag: &str) -> Result<Signed, Failure> {
        let Some(updater) = self.updater(gun).await? else {
            return Ok(Signed::Unsigned(no_root(gun)));
        };
        match updater.find_target(tag).await? {
            Some((_, target)) => {
                let hex = target.hashes.get("sha256").map(String::as_str).unwrap_or_default();
                Ok(Signed::Digest(Digest::from_sha256_hex(hex).map_err(Failure::untrusted)?))
            }
            None => Ok(Signed::Unsigned(format!("{gun}:{tag} is not signed"))),
        }
    }

    /// True when some tag of the repository is signed with `digest`.
    async fn digest_is_signed(&mut self, gun: &Gun, digest: &Digest) -> Result<Option<bool>, Failure> {
        if !self.signed_digests.contains_key(gun) {
            let Some(updater) = self.updater(gun).await? else {
                return Ok(None);
            };
            let digests = updater.all_targets().await?.into_values().filter_map(|(_, target)| target.hashes.get("sha256").cloned()).collect();
            self.signed_digests.insert(gun.clone(), digests);
        }
        Ok(Some(self.signed_digests.get(gun).is_some_and(|digests| digests.contains(digest.hex()))))
    }
}

fn no_root(gun: &Gun) -> String {
    format!("no trusted root for {gun}; import it with `signet trust import {gun} ROOT_FILE`")
}

pub async fn run(context: &Context, args: PinArgs) -> CmdResult {
    let mut verifier = Verifier { context, updaters: HashMap::new(), signed_digests: HashMap::new() };
    let mut rows = Vec::new();
    let mut rewritten = Vec::new();

    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Failure::operational(anyhow::Error::new(error).context(format!("failed to read {}", path.display()))))?;
        let found = scan(detect_kind(path, &text), &text);
        for skipped in &found.skipped {
            let message = format!("{}:{}: cannot pin {:?}: {}", path.display(), skipped.line, skipped.text, skipped.reason);
            if args.check && !args.allow_unsigned {
                rows.push(Row { file: path.clone(), line: skipped.line, reference: skipped.text.clone(), outcome: Outcome::Problem { reason: skipped.reason.clone(), unsigned: false } });
            } else {
                eprintln!("warning: {message}");
            }
        }

        let mut replacements = Vec::new();
        for image in &found.images {
            let outcome = pin_one(&mut verifier, image, args.check).await?;
            if let Outcome::Pinned { new_text: Some(new_text), .. } = &outcome {
                replacements.push((image.range.clone(), new_text.clone()));
            }
            rows.push(Row { file: path.clone(), line: image.line, reference: image.text.clone(), outcome });
        }
        if !replacements.is_empty() {
            let new = rewrite(&text, &replacements).map_err(Failure::operational)?;
            rewritten.push((path.clone(), new));
        }
    }
    // The metadata is released at exit, as for lookups.
    std::mem::forget(verifier);

    let failed = rows.iter().any(|row| matches!(&row.outcome, Outcome::Problem { unsigned, .. } if !(*unsigned && args.allow_unsigned)));
    report(context, &rows, &args, failed);
    if failed {
        let problem = if args.check { "not pinned to verified digests" } else { "not signed; nothing was changed" };
        let failure = Failure::untrusted(anyhow::anyhow!("some image references are {problem}"));
        return Err(if args.check { failure } else { failure.with_hint("sign them, or pass --allow-unsigned to pin the others and leave these as they are") });
    }
    if !args.check {
        for (path, text) in rewritten {
            write_preserving_mode(&path, text.as_bytes())?;
        }
    }
    Ok(())
}

async fn pin_one(verifier: &mut Verifier<'_>, image: &Found, check: bool) -> Result<Outcome, Failure> {
    // The scanner only reports references that parse.
    let reference = Reference::parse(&image.text).map_err(Failure::usage)?;
    let gun = verifier.context.gun_for(&reference.gun)?;
    let problem = |reason: String, unsigned: bool| Ok(Outcome::Problem { reason, unsigned });

    let Some(tag) = reference.tag.clone().or_else(|| reference.digest.is_none().then(|| "latest".to_owned())) else {
        // NAME@DIGEST without a tag: the digest must be one that some tag is signed with.
        let Some(digest) = reference.digest else {
            return problem("no tag or digest".to_owned(), false);
        };
        return match verifier.digest_is_signed(&gun, &digest).await? {
            None => problem(no_root(&gun), true),
            Some(true) => Ok(Outcome::Pinned { digest, new_text: None }),
            Some(false) => problem(format!("{digest} is not signed for any tag of {gun}"), true),
        };
    };

    let signed = match verifier.tag(&gun, &tag).await? {
        Signed::Digest(digest) => digest,
        Signed::Unsigned(reason) => return problem(reason, true),
    };
    match (&reference.digest, check) {
        (Some(pinned), _) if *pinned == signed => Ok(Outcome::Pinned { digest: signed, new_text: None }),
        (Some(pinned), true) => problem(format!("pinned to {pinned}, but {gun}:{tag} is signed as {signed}"), false),
        (None, true) => problem(format!("not pinned; {gun}:{tag} is signed as {signed}"), false),
        (_, false) => Ok(Outcome::Pinned { new_text: Some(pinned_text(&image.text, &signed)), digest: signed }),
    }
}

/// Prints the result of each reference. When the command fails nothing is written, so rewrites
/// are not listed as done.
fn report(context: &Context, rows: &[Row], args: &PinArgs, failed: bool) {
    if context.output == OutputFormat::Json {
        let items: Vec<_> = rows
            .iter()
            .map(|row| match &row.outcome {
                Outcome::Pinned { digest, new_text } => json!({
                    "file": row.file.display().to_string(), "line": row.line, "reference": row.reference,
                    "status": match (new_text.is_some(), failed) { (true, false) => "pinned", (true, true) => "not written", _ => "verified" },
                    "digest": digest.to_string(), "new_reference": new_text,
                }),
                Outcome::Problem { reason, unsigned } => json!({
                    "file": row.file.display().to_string(), "line": row.line, "reference": row.reference,
                    "status": if *unsigned && args.allow_unsigned { "skipped" } else { "failed" }, "reason": reason,
                }),
            })
            .collect();
        println!("{}", json!({"check": args.check, "references": items}));
        return;
    }
    for row in rows {
        let place = format!("{}:{}", row.file.display(), row.line);
        match &row.outcome {
            Outcome::Pinned { new_text: Some(_), .. } if failed => {}
            Outcome::Pinned { new_text: Some(new_text), .. } => println!("{place}: {} -> {new_text}", row.reference),
            Outcome::Pinned { new_text: None, digest } => println!("{place}: {} verified ({digest})", row.reference),
            Outcome::Problem { reason, unsigned } if *unsigned && args.allow_unsigned => {
                eprintln!("warning: {place}: {} left as it is: {reason}", row.reference)
            }
            Outcome::Problem { reason, .. } => eprintln!("{place}: {}: {reason}", row.reference),
        }
    }
}

/// Replaces a file atomically, keeping its permissions.
fn write_preserving_mode(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let io = |action: &str, error: std::io::Error| Failure::operational(anyhow::Error::new(error).context(format!("failed to {action} {}", path.display())));
    let permissions = std::fs::metadata(path).map_err(|e| io("read", e))?.permissions();
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".signet-pin.tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary).map_err(|e| io("write", e))?;
    file.write_all(bytes).map_err(|e| io("write", e))?;
    file.set_permissions(permissions).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("write", e))?;
    std::fs::rename(&temporary, path).map_err(|e| io("replace", e))
}
