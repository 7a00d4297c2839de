//! Liveness, readiness and metrics endpoints.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// How long the readiness check waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Returns 200 while the process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Returns 200 while the database is reachable, else 503.
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    if database_up(&state).await {
        Ok(Json(json!({"status": "ok"})))
    } else {
        Err(ApiError::unavailable())
    }
}

/// Upper bound on repository and role pairs reported in the expiry metric, soonest first.
const MAX_EXPIRY_SERIES: i64 = 10_000;

/// `GET /metrics`. With authentication on it needs an admin token, because its series name
/// repositories.
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Err(error) = state.auth.authorize(&state.pool, &headers, crate::auth::Need::Admin).await {
        return error.into_response();
    }
    let up = database_up(&state).await;
    let mut body = state.metrics.render(up);
    if up {
        match crate::db::tuf_files::current_expiries(&state.pool, MAX_EXPIRY_SERIES).await {
            Ok(expiries) => crate::metrics::render_expiries(&mut body, &expiries),
            Err(error) => tracing::warn!(error = %error, "failed to read expiries for metrics"),
        }
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn database_up(state: &AppState) -> bool {
    let check = sqlx::query("SELECT 1").execute(&state.pool);
    matches!(tokio::time::timeout(READY_TIMEOUT, check).await, Ok(Ok(_)))
}
