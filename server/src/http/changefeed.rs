//! Changefeed endpoints: one record per published timestamp and per deletion.
//!
//! Parameters: `change_id` (return records with a greater id; default 0, the beginning) and
//! `records` (page size, 1 to 1000, default 100). Records come oldest first; the response's
//! `next_change_id` is the `change_id` for the next page.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Need;
use crate::db::changefeed;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const DEFAULT_RECORDS: i64 = 100;
const MAX_RECORDS: i64 = 1000;

/// `GET /v2/_trust/changefeed`: changes of every repository.
pub async fn global(State(state): State<AppState>, headers: HeaderMap, Query(params): Query<HashMap<String, String>>) -> ApiResult<Json<Value>> {
    state.auth.authorize(&state.pool, &headers, Need::Admin).await?;
    page(&state, None, &params).await
}

/// `GET /v2/{gun}/_trust/changefeed`: changes of one repository.
pub async fn page(state: &AppState, gun: Option<&str>, params: &HashMap<String, String>) -> ApiResult<Json<Value>> {
    let after = parse_param(params, "change_id", 0, 0, i64::MAX)?;
    let limit = parse_param(params, "records", DEFAULT_RECORDS, 1, MAX_RECORDS)?;
    let records = changefeed::list(&state.pool, gun, after, limit).await?;
    let next = records.last().map_or(after, |record| record.id);
    Ok(Json(json!({"count": records.len(), "records": records, "next_change_id": next})))
}

fn parse_param(params: &HashMap<String, String>, name: &str, default: i64, min: i64, max: i64) -> ApiResult<i64> {
    let Some(text) = params.get(name) else {
        return Ok(default);
    };
    match text.parse::<i64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(ApiError::bad_request(
            "INVALID_PARAMETERS",
            format!("{name} must be an integer from {min} to {max}, got {:?}", text.chars().take(40).collect::<String>()),
        )),
    }
}
