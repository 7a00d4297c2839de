//! Background work: re-signing timestamps and server-held snapshots well before they expire,
//! and pruning superseded timestamp and snapshot versions.
//!
//! Runs in every server process. Several processes on one database are safe: each re-sign
//! inserts the next timestamp version in a transaction, so when two race, the unique
//! (gun, role, version) constraint lets one commit and the other skips.

use chrono::Utc;
use tokio::sync::watch;

use crate::repository;
use crate::state::AppState;

/// Re-signs and prunes every `resign_interval` until `shutdown` changes.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let interval = state.config.resign_interval;
    tracing::info!(interval_s = interval.as_secs_f64(), "background re-signing started");
    loop {
        tick(&state).await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => break,
        }
    }
    tracing::info!("background re-signing stopped");
}

/// Runs one pass: re-signs what passed half its lifetime, then prunes.
pub async fn tick(state: &AppState) {
    let now = Utc::now();
    let half = |lifetime: std::time::Duration| now + chrono::Duration::from_std(lifetime / 2).unwrap_or(chrono::Duration::hours(1));
    let due = crate::db::tuf_files::due_for_resigning(
        &state.pool,
        half(state.config.timestamp_lifetime),
        half(state.config.snapshot_lifetime),
    )
    .await;
    let due = match due {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(error = %error, "re-signing skipped: cannot list repositories");
            return;
        }
    };

    for gun in due {
        match repository::resign(state, &gun).await {
            Ok(true) => state.metrics.record_resign(true),
            Ok(false) => {}
            Err(error) => {
                state.metrics.record_resign(false);
                tracing::warn!(gun = %gun, code = error.code, message = %error.message, "re-signing failed; retrying on the next pass");
            }
        }
    }

    let cutoff = now - chrono::Duration::from_std(state.config.retention).unwrap_or(chrono::Duration::days(30));
    match crate::db::tuf_files::prune(&state.pool, cutoff).await {
        Ok(0) => {}
        Ok(rows) => {
            state.metrics.record_pruned(rows);
            tracing::info!(rows, "pruned superseded timestamp and snapshot versions");
        }
        Err(error) => tracing::warn!(error = %error, "pruning failed; retrying on the next pass"),
    }
}
