//! `/v2/{gun}/_trust/...`: metadata by role, version and checksum; uploads; server keys;
//! repository deletion; the per-repository changefeed.
//!
//! The GUN contains `/`, so the path is split by hand at `/_trust/`. Role names in the file part
//! may be percent-encoded (a delegated role `a/b` arrives as `a%2Fb`).

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use percent_encoding::percent_decode_str;
use serde_json::json;
use signet_core::{Gun, RoleName};

use crate::auth::token::Action;
use crate::auth::{Need, Principal, ANONYMOUS};
use crate::config::AuthMode;
use crate::cache::CachedFile;
use crate::config::gun_allowed;
use crate::db::tuf_files::{self, StoredFile};
use crate::error::{ApiError, ApiResult};
use crate::repository;
use crate::state::AppState;

/// Cache-Control for by-version and by-checksum metadata, which never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Upper bound on parts in one upload.
const MAX_PARTS: usize = 1000;

/// Resource named by a request path.
enum Target {
    Current(RoleName),
    ByVersion(RoleName, i64),
    ByHash(RoleName, String),
    Key(String),
    Collection,
    Changefeed,
}

pub async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    match route(state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// The subject of the token behind a request, added to the response for the request log.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

async fn route(state: AppState, request: Request) -> ApiResult<Response> {
    let path = request.uri().path().to_owned();
    let (gun, target) = parse_path(&path)?;
    let method = request.method().clone();

    if !gun_allowed(&state.config.gun_prefixes, gun.as_str()) {
        let message = format!("repository {gun} is outside the GUN prefixes this server accepts");
        return Err(match method {
            Method::POST => ApiError::bad_request("GUN_NOT_ALLOWED", message),
            _ => ApiError::new(StatusCode::NOT_FOUND, "GUN_NOT_ALLOWED", message),
        });
    }
    let principal = authorize(&state, &gun, &method, &target, request.headers()).await?;
    let mut response = handle(&state, gun, target, method, &path, request, &principal.subject).await?;
    response.extensions_mut().insert(Actor(principal.subject));
    Ok(response)
}

/// Checks the request's token for the access its method and target need.
async fn authorize(state: &AppState, gun: &Gun, method: &Method, target: &Target, headers: &HeaderMap) -> ApiResult<Principal> {
    // Without authentication every request is allowed, so the root lookup below is skipped.
    if state.auth.mode() == AuthMode::None {
        return Ok(Principal { subject: ANONYMOUS.to_owned() });
    }
    let action = match (method, target) {
        (&Method::POST, Target::Key(_)) | (&Method::DELETE, Target::Collection) => Action::All,
        (&Method::POST, Target::Collection) => Action::Push,
        // Fetching a key of a repository without a root creates a pending key, which is a write.
        (&Method::GET, Target::Key(_)) if tuf_files::current(&state.pool, gun.as_str(), RoleName::ROOT).await?.is_none() => Action::Push,
        _ => Action::Pull,
    };
    state.auth.authorize(&state.pool, headers, Need::Repository(gun.as_str(), action)).await
}

async fn handle(state: &AppState, gun: Gun, target: Target, method: Method, path: &str, request: Request, actor: &str) -> ApiResult<Response> {
    let state = state.clone();
    match (method, target) {
        (Method::GET | Method::HEAD, Target::Current(role)) => get_current(&state, &gun, &role, request.headers()).await,
        (Method::GET | Method::HEAD, Target::ByVersion(role, version)) => {
            let file = tuf_files::by_version(&state.pool, gun.as_str(), role.as_str(), version).await?;
            immutable(file, &gun, &role, request.headers())
        }
        (Method::GET | Method::HEAD, Target::ByHash(role, sha256)) => {
            let file = tuf_files::by_hash(&state.pool, gun.as_str(), role.as_str(), &sha256).await?;
            immutable(file, &gun, &role, request.headers())
        }
        (Method::GET, Target::Key(role)) => {
            let key = repository::server_key(&state, &gun, &role).await?;
            Ok(Json(key).into_response())
        }
        (Method::POST, Target::Key(role)) => {
            let key = repository::rotate_key(&state, &gun, &role).await?;
            Ok(Json(key).into_response())
        }
        (Method::POST, Target::Collection) => upload(&state, &gun, request, actor).await,
        (Method::DELETE, Target::Collection) => {
            if repository::delete(&state, &gun, actor).await? {
                Ok(Json(json!({})).into_response())
            } else {
                Err(ApiError::not_found(format!("repository {gun} has no metadata")))
            }
        }
        (Method::GET, Target::Changefeed) => {
            let Query(params) = Query::<HashMap<String, String>>::try_from_uri(request.uri())
                .map_err(|e| ApiError::bad_request("INVALID_PARAMETERS", e.body_text()))?;
            Ok(super::changefeed::page(&state, Some(gun.as_str()), &params).await?.into_response())
        }
        (method, _) => Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", format!("{method} is not allowed on {path}"))),
    }
}

fn parse_path(path: &str) -> ApiResult<(Gun, Target)> {
    let rest = path.strip_prefix("/v2/").ok_or_else(|| ApiError::not_found("no such endpoint"))?;
    let (gun, tail) = rest.split_once("/_trust/").ok_or_else(|| ApiError::not_found("no such endpoint"))?;
    let gun = Gun::parse(gun).map_err(|e| ApiError::bad_request("INVALID_GUN", e.to_string()))?;

    if tail == "changefeed" {
        return Ok((gun, Target::Changefeed));
    }
    let file = tail.strip_prefix("tuf/").ok_or_else(|| ApiError::not_found("no such endpoint"))?;
    if file.is_empty() {
        return Ok((gun, Target::Collection));
    }
    let file = percent_decode_str(file)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("INVALID_ROLE", "the file name is not valid UTF-8 after percent-decoding"))?;
    Ok((gun, parse_file_name(&file)?))
}

/// Parses `ROLE.json`, `VERSION.ROLE.json`, `ROLE.SHA256.json` and `ROLE.key`.
fn parse_file_name(file: &str) -> ApiResult<Target> {
    let role = |name: &str| RoleName::parse(name).map_err(|e| ApiError::bad_request("INVALID_ROLE", e.to_string()));

    if let Some(name) = file.strip_suffix(".key") {
        return match name {
            RoleName::TIMESTAMP | RoleName::SNAPSHOT => Ok(Target::Key(name.to_owned())),
            _ => Err(ApiError::bad_request("INVALID_ROLE", format!("invalid key role {name:?}; the server has only timestamp and snapshot keys"))),
        };
    }
    let stem = file.strip_suffix(".json").ok_or_else(|| ApiError::not_found(format!("no such metadata file {file:?}")))?;

    if let Some((prefix, name)) = stem.split_once('.') {
        if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) {
            let version = prefix.parse::<i64>().map_err(|_| ApiError::not_found(format!("no such version {prefix}")))?;
            return Ok(Target::ByVersion(role(name)?, version));
        }
    }
    if let Some((name, hash)) = stem.rsplit_once('.') {
        if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Target::ByHash(role(name)?, hash.to_ascii_lowercase()));
        }
    }
    Ok(Target::Current(role(stem)?))
}

async fn get_current(state: &AppState, gun: &Gun, role: &RoleName, headers: &HeaderMap) -> ApiResult<Response> {
    let file = match state.cache.get(gun.as_str(), role.as_str()) {
        Some(file) => file,
        None => {
            // Concurrent misses of one entry share a single database read. Without a cache every
            // request reads the database on its own.
            let lock = state.cache.is_enabled().then(|| state.cache.refill_lock(gun.as_str(), role.as_str()));
            let _refilling = match &lock {
                Some(lock) => Some(lock.lock().await),
                None => None,
            };
            match state.cache.get(gun.as_str(), role.as_str()) {
                Some(file) => file,
                None => {
                    let started = Instant::now();
                    let stored = tuf_files::current(&state.pool, gun.as_str(), role.as_str()).await?;
                    let stored = stored.ok_or_else(|| not_found(gun, role))?;
                    let file = CachedFile::new(stored.version, stored.sha256, Bytes::from(stored.data), started);
                    state.cache.put(gun.as_str(), role.as_str(), file)
                }
            }
        }
    };
    let cache_control = format!("public, max-age={}", state.config.current_max_age.as_secs());
    Ok(metadata_response(&file.sha256, file.body.clone(), &cache_control, headers))
}

fn immutable(file: Option<StoredFile>, gun: &Gun, role: &RoleName, headers: &HeaderMap) -> ApiResult<Response> {
    let file = file.ok_or_else(|| not_found(gun, role))?;
    Ok(metadata_response(&file.sha256, Bytes::from(file.data), IMMUTABLE, headers))
}

fn not_found(gun: &Gun, role: &RoleName) -> ApiError {
    ApiError::not_found(format!("{role} metadata of {gun} not found"))
}

/// Serves stored bytes unchanged, with an ETag and conditional GET.
fn metadata_response(sha256: &str, body: Bytes, cache_control: &str, headers: &HeaderMap) -> Response {
    let etag = format!("\"{sha256}\"");
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));

    let mut response = if not_modified { StatusCode::NOT_MODIFIED.into_response() } else { body.into_response() };
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(cache_control) {
        response_headers.insert(header::CACHE_CONTROL, value);
    }
    if !not_modified {
        response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

/// `POST /v2/{gun}/_trust/tuf/`: one multipart part per role, each named `files` with the role
/// name as its file name.
async fn upload(state: &AppState, gun: &Gun, request: Request, actor: &str) -> ApiResult<Response> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::bad_request("MALFORMED_UPLOAD", format!("the upload must be multipart/form-data: {}", e.body_text())))?;

    let max_role_size = usize::try_from(state.config.max_role_size).unwrap_or(usize::MAX);
    let mut parts = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if parts.len() >= MAX_PARTS {
            return Err(ApiError::bad_request("MALFORMED_UPLOAD", format!("an upload has at most {MAX_PARTS} parts")));
        }
        if field.name() != Some("files") {
            return Err(ApiError::bad_request("MALFORMED_UPLOAD", "every part must be named \"files\""));
        }
        let file_name = field.file_name().unwrap_or_default().to_owned();
        let role = file_name.strip_suffix(".json").unwrap_or(&file_name).to_owned();
        if role.is_empty() {
            return Err(ApiError::bad_request("NO_FILENAME", "every part needs the role name as its file name"));
        }

        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if bytes.len() + chunk.len() > max_role_size {
                return Err(ApiError::too_large(format!("{role} is larger than the limit of {max_role_size} bytes per role")));
            }
            bytes.extend_from_slice(&chunk);
        }
        parts.push((role, bytes));
    }

    let outcome = repository::publish(state, gun, parts, actor).await?;
    Ok(Json(json!({"snapshot_version": outcome.snapshot_version, "timestamp_version": outcome.timestamp_version})).into_response())
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::too_large("the upload is larger than the request size limit");
    }
    ApiError::bad_request("MALFORMED_UPLOAD", format!("invalid multipart body: {}", error.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_parse() {
        assert!(matches!(parse_file_name("root.json"), Ok(Target::Current(r)) if r.as_str() == "root"));
        assert!(matches!(parse_file_name("3.root.json"), Ok(Target::ByVersion(r, 3)) if r.as_str() == "root"));
        assert!(matches!(parse_file_name("12.targets/releases.json"), Ok(Target::ByVersion(r, 12)) if r.as_str() == "targets/releases"));
        let hash = "a".repeat(64);
        assert!(matches!(parse_file_name(&format!("targets.{hash}.json")), Ok(Target::ByHash(r, h)) if r.as_str() == "targets" && h == hash));
        assert!(matches!(parse_file_name("timestamp.key"), Ok(Target::Key(r)) if r == "timestamp"));
        assert!(parse_file_name("targets.key").is_err());
        assert!(parse_file_name("root.xml").is_err());
        assert!(parse_file_name("99999999999999999999.root.json").is_err());
        assert!(parse_file_name("bad role.json").is_err());
    }
}
