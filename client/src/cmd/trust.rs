//! `signet trust export|import`: handing a repository's root to consumers.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use signet_core::trusted::TrustedSet;

use super::{parse_gun, CmdResult, Context, Failure};

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Print the repository's current root, as the exact bytes the server serves.
    Export {
        /// Repository (GUN).
        gun: String,
    },
    /// Make ROOT_FILE the trusted root of the repository.
    Import {
        /// Repository (GUN).
        gun: String,
        /// Root metadata file, as printed by `signet trust export`.
        root_file: PathBuf,
    },
}

pub async fn run(context: &Context, command: TrustCommand) -> CmdResult {
    match command {
        TrustCommand::Export { gun } => {
            let gun = parse_gun(&gun)?;
            let bytes = if context.state(&gun).has_trusted_root() {
                let mut updater = context.updater(&gun, None, false).await?;
                updater.refresh().await?;
                updater.trusted().root().bytes.clone()
            } else {
                eprintln!("warning: no trusted root for {gun}; printing the server's root without verifying it");
                let remote = context.remote(&gun)?;
                let root = remote.fetch("root.json", 512 * 1024).await.map_err(Failure::operational)?;
                root.ok_or_else(|| Failure::operational(anyhow::anyhow!("the server has no root for {gun}")))?
            };
            std::io::stdout().write_all(&bytes).map_err(Failure::operational)?;
            Ok(())
        }
        TrustCommand::Import { gun, root_file } => {
            let gun = parse_gun(&gun)?;
            let bytes = std::fs::read(&root_file)
                .map_err(|e| Failure::usage(anyhow::Error::new(e).context(format!("failed to read {}", root_file.display()))))?;
            // The root must at least be signed by a threshold of its own root keys.
            TrustedSet::new(bytes.clone(), chrono::Utc::now()).map_err(Failure::untrusted)?;
            let state = context.state(&gun);
            let metadata = state.metadata();
            if metadata.path().exists() {
                std::fs::remove_dir_all(metadata.path()).map_err(Failure::operational)?;
            }
            metadata.write(&signet_core::RoleName::root(), &bytes).map_err(Failure::operational)?;
            eprintln!("trusting the imported root for {gun}");
            Ok(())
        }
    }
}
