//! The HTTP API: routes, request logging and metrics.

mod changefeed;
mod health;
mod tuf;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::compression::CompressionLayer;
use tower_http::CompressionLevel;

use crate::error::ApiError;
use crate::state::AppState;

/// Builds the router with every route of the API.
pub fn router(state: AppState) -> Router {
    let body_limit = usize::try_from(state.config.max_request_size).unwrap_or(usize::MAX);
    Router::new()
        .route("/v2/", get(ping))
        .route("/v2/_trust/changefeed", get(changefeed::global))
        .route("/v2/{*path}", axum::routing::any(tuf::dispatch))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(body_limit))
        // The fastest level compresses a 1.1 MB targets role of 10,000 entries in a few
        // milliseconds instead of about 40, for a slightly larger response.
        .layer(CompressionLayer::new().gzip(true).quality(CompressionLevel::Fastest))
        .layer(middleware::from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

/// `GET /v2/`: 200 `{}` for a client that may use the API. With authentication on it needs a
/// valid token, so a client without one gets the challenge that names the token service.
async fn ping(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    match state.auth.authorize(&state.pool, &headers, crate::auth::Need::Any).await {
        Ok(_) => Json(json!({})).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Logs one line per request and records its metrics. URLs carry no secrets; headers, which
/// may, are not logged.
async fn log_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |path| path.as_str()).to_owned();
    let path = request.uri().path().to_owned();

    let response = next.run(request).await;

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let actor = response.extensions().get::<tuf::Actor>().map(|actor| actor.0.clone());
    state.metrics.record_request(method.as_str(), &route, status, elapsed);
    tracing::info!(
        method = %method,
        route = %route,
        path = %path,
        status,
        subject = %actor.as_deref().unwrap_or("-"),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}
