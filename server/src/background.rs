//! Background work: re-signing timestamps and server-held snapshots well before they expire,
//! and pruning superseded timestamp and snapshot versions.
//!
//! Runs in every server process. Several processes on one database are safe: each re-sign
//! inserts the next timestamp version in a transaction, so when two race, the unique
//! (gun, role, version) constraint lets one commit and the other skips.

use std::collections::HashSet;

use chrono::Utc;
use tokio::sync::watch;

use crate::repository;
use crate::state::AppState;

/// Re-signs and prunes every `resign_interval` until `shutdown` changes.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let interval = state.config.resign_interval;
    let mut warned = HashSet::new();
    tracing::info!(interval_s = interval.as_secs_f64(), "background re-signing started");
    loop {
        tick(&state).await;
        warn_expiring(&state, &mut warned).await;
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

/// Window before expiry in which client-held roles are reported.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// Upper bound on (repository, role, version) triples remembered as already reported.
const MAX_WARNED: usize = 100_000;

/// Logs a warning, once per role version and process, for client-held roles (root, targets and
/// delegated roles) that expire within [`EXPIRY_WARNING_DAYS`]; nothing re-signs them but their
/// owners.
async fn warn_expiring(state: &AppState, warned: &mut HashSet<(String, String, i64)>) {
    let deadline = Utc::now() + chrono::Duration::days(EXPIRY_WARNING_DAYS);
    let rows = sqlx::query_as::<_, (String, String, i64, chrono::DateTime<Utc>)>(
        "SELECT gun, role, version, expires FROM (SELECT DISTINCT ON (gun, role) gun, role, version, expires FROM tuf_files \
         WHERE role NOT IN ('snapshot', 'timestamp') ORDER BY gun, role, version DESC) current WHERE expires < $1 LIMIT 1000",
    )
    .bind(deadline)
    .fetch_all(&state.pool)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(error = %error, "expiry check skipped: cannot read roles");
            return;
        }
    };
    if warned.len() > MAX_WARNED {
        warned.clear();
    }
    for (gun, role, version, expires) in rows {
        if warned.insert((gun.clone(), role.clone(), version)) {
            tracing::warn!(gun = %gun, role = %role, version, expires = %expires.format("%Y-%m-%dT%H:%M:%SZ"), "client-held role expires soon; its owner must re-sign it (signet resign)");
        }
    }
}
