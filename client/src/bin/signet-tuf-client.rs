//! `signet-tuf-client`: the TUF client conformance protocol, on top of the same client library
//! as `signet`.
//!
//! ```text
//! signet-tuf-client --metadata-dir DIR init TRUSTED_ROOT_FILE
//! signet-tuf-client --metadata-url URL --metadata-dir DIR refresh
//! signet-tuf-client --metadata-url URL --metadata-dir DIR --target-name NAME [--target-name ...]
//!                   --target-dir TDIR --target-base-url TURL download
//! ```
//! DIR contains the trusted metadata as `ROLE.json` files with the exact bytes served. Exit code 0
//! on success, 1 on any failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ring::digest::{digest, SHA256, SHA512};
use signet_client::remote::Remote;
use signet_client::updater::{MetadataDir, Updater};
use signet_core::metadata::TargetFile;
use signet_core::trusted::TrustedSet;

/// Characters kept as they are in target file names: the rest is percent-encoded, `/` included.
const FILE_NAME_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

#[derive(Debug, Parser)]
#[command(name = "signet-tuf-client", version, about = "TUF client conformance adapter for Signet's client library")]
struct Cli {
    /// Directory of trusted metadata.
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Base URL of the metadata files.
    #[arg(long)]
    metadata_url: Option<String>,
    /// Target to download (repeatable).
    #[arg(long = "target-name")]
    target_names: Vec<String>,
    /// Directory for downloaded targets.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Base URL of the target files.
    #[arg(long)]
    target_base_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Store TRUSTED_ROOT_FILE as the trust anchor; no network.
    Init { trusted_root: PathBuf },
    /// Run a full metadata update.
    Refresh,
    /// Refresh, then download each target in order.
    Download,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = MetadataDir::new(&cli.metadata_dir);
    match cli.command {
        Command::Init { trusted_root } => {
            let bytes = std::fs::read(&trusted_root)?;
            TrustedSet::new(bytes.clone(), chrono::Utc::now())?;
            dir.write(&signet_core::RoleName::root(), &bytes)?;
            Ok(())
        }
        Command::Refresh => {
            let mut updater = open(&cli.metadata_url, dir)?;
            updater.refresh().await?;
            Ok(())
        }
        Command::Download => {
            let target_dir = cli.target_dir.ok_or_else(|| anyhow::anyhow!("download needs --target-dir"))?;
            let target_base_url = cli.target_base_url.ok_or_else(|| anyhow::anyhow!("download needs --target-base-url"))?;
            let mut updater = open(&cli.metadata_url, dir)?;
            updater.refresh().await?;
            let consistent = updater.trusted().checked_root().root.consistent_snapshot;
            for name in &cli.target_names {
                let (_, target) = updater.find_target(name).await?.ok_or_else(|| anyhow::anyhow!("target {name} not found"))?;
                download(&updater, name, &target, consistent, &target_base_url, &target_dir).await?;
            }
            Ok(())
        }
    }
}

fn open(metadata_url: &Option<String>, dir: MetadataDir) -> anyhow::Result<Updater> {
    let url = metadata_url.as_deref().ok_or_else(|| anyhow::anyhow!("this command needs --metadata-url"))?;
    Ok(Updater::new(Remote::from_base_url(url)?, dir, None, chrono::Utc::now())?)
}

/// TUF 5.7: downloads a target up to its length and checks every listed hash; a cached file
/// whose hashes match is kept without a download.
async fn download(updater: &Updater, name: &str, target: &TargetFile, consistent: bool, base_url: &str, target_dir: &Path) -> anyhow::Result<()> {
    let path = target_dir.join(utf8_percent_encode(name, FILE_NAME_ESCAPES).to_string());
    if let Ok(cached) = std::fs::read(&path) {
        if matches_target(&cached, target) {
            return Ok(());
        }
    }

    let file = if consistent {
        let sha256 = target.hashes.get("sha256").ok_or_else(|| anyhow::anyhow!("target {name} has no sha256 hash"))?;
        // The hash prefixes the base name: dir/HASH.name, as python-tuf and go-tuf request it.
        match name.rsplit_once('/') {
            Some((directory, base)) => format!("{directory}/{sha256}.{base}"),
            None => format!("{sha256}.{name}"),
        }
    } else {
        name.to_owned()
    };
    let url = format!("{}/{file}", base_url.trim_end_matches('/'));
    let bytes = updater.remote().fetch_url(&url, target.length).await?.ok_or_else(|| anyhow::anyhow!("target {name} not found at {url}"))?;
    if !matches_target(&bytes, target) {
        anyhow::bail!("target {name} does not match its signed length and hashes");
    }
    std::fs::create_dir_all(target_dir)?;
    std::fs::write(&path, &bytes)?;
    Ok(())
}

fn matches_target(bytes: &[u8], target: &TargetFile) -> bool {
    if bytes.len() as u64 != target.length {
        return false;
    }
    // Every hash this client can compute must match, and at least one must be present.
    let mut checked = 0;
    for (algorithm, expected) in &target.hashes {
        let actual = match algorithm.as_str() {
            "sha256" => hex::encode(digest(&SHA256, bytes)),
            "sha512" => hex::encode(digest(&SHA512, bytes)),
            _ => continue,
        };
        if !actual.eq_ignore_ascii_case(expected) {
            return false;
        }
        checked += 1;
    }
    checked > 0
}
