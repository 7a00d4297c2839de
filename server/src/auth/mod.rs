//! Authentication and authorization of API requests.
//!
//! Requests carry `Authorization: Bearer <JWT>` in the Docker registry token format. With
//! `--auth builtin` the tokens come from `signet-server token issue`. They are checked against
//! the issuer's keys in the database and its list of revoked tokens. With `--auth registry-token`
//! they come from an external token service and are checked against its configured public keys. A
//! request without a valid token, or whose token lacks the access it needs, gets 401 with a
//! `WWW-Authenticate` challenge naming the scope to ask the token service for.

pub mod issuer;
pub mod token;

use std::sync::RwLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use chrono::Utc;
use sqlx::PgPool;

use crate::config::{AuthConfig, AuthMode};
use crate::db;
use crate::error::ApiError;
use token::{Action, Claims, TokenError, Validation, VerifyingKeys};

/// Seconds of clock difference tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: i64 = 30;

/// Subject recorded for requests without a token.
pub const ANONYMOUS: &str = "anonymous";

/// The access a request needs.
#[derive(Debug, Clone, Copy)]
pub enum Need<'a> {
    Repository(&'a str, Action),
    /// Server-wide endpoints: the global changefeed and /metrics.
    Admin,
    /// Any valid token: `GET /v2/`, where clients learn where to get tokens.
    Any,
}

/// The sender of a request, for the log and the changefeed.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: String,
}

/// Checks tokens against the configured mode.
pub struct Authenticator {
    config: AuthConfig,
    validation: Validation,
    /// Keys of the external token service, or of the built-in issuer (reloaded from the
    /// database when a token names a key id not loaded yet).
    keys: RwLock<VerifyingKeys>,
}

impl Authenticator {
    /// Loads the keys the mode needs: the token key file for `registry-token`; built-in issuer
    /// keys are read from the database on first use.
    pub fn new(config: &AuthConfig) -> anyhow::Result<Authenticator> {
        let keys = match (&config.mode, &config.token_key) {
            (AuthMode::RegistryToken, Some(path)) => VerifyingKeys::from_file(path)?,
            _ => VerifyingKeys::new(),
        };
        if config.mode == AuthMode::RegistryToken && keys.is_empty() {
            anyhow::bail!("no usable public key found in the token key file");
        }
        let validation = Validation { issuer: config.issuer.clone(), audience: config.service.clone(), leeway_seconds: LEEWAY_SECONDS };
        Ok(Authenticator { config: config.clone(), validation, keys: RwLock::new(keys) })
    }

    pub fn mode(&self) -> AuthMode {
        self.config.mode
    }

    /// Returns who made the request when it may do what it needs, or the 401 to send.
    pub async fn authorize(&self, pool: &PgPool, headers: &HeaderMap, need: Need<'_>) -> Result<Principal, ApiError> {
        if self.config.mode == AuthMode::None {
            return Ok(Principal { subject: ANONYMOUS.to_owned() });
        }
        let Some(token) = bearer_token(headers) else {
            if self.config.anonymous_read && matches!(need, Need::Repository(_, Action::Pull) | Need::Any) {
                return Ok(Principal { subject: ANONYMOUS.to_owned() });
            }
            return Err(self.challenge(need, None, "authentication required: send a bearer token"));
        };
        let claims = match self.verify(pool, token).await {
            Ok(claims) => claims,
            Err(Rejection::Token(error)) => {
                tracing::info!(reason = %error, "rejected a token");
                return Err(self.challenge(need, Some("invalid_token"), &format!("invalid token: {error}")));
            }
            Err(Rejection::Api(error)) => return Err(error),
        };
        let allowed = match need {
            Need::Repository(gun, action) => claims.allows(gun, action),
            Need::Admin => claims.is_admin(),
            Need::Any => true,
        };
        if !allowed {
            tracing::info!(subject = %claims.sub, "token lacks the access a request needs");
            return Err(self.challenge(need, Some("insufficient_scope"), "the token does not grant this access"));
        }
        Ok(Principal { subject: claims.sub })
    }

    async fn verify(&self, pool: &PgPool, token: &str) -> Result<Claims, Rejection> {
        let now = Utc::now().timestamp();
        let result = {
            let keys = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            token::verify(token, &keys, &self.validation, now)
        };
        let claims = match (result, self.config.mode) {
            // A key issued after the keys were loaded, by `token issue` in another process.
            (Err(TokenError::UnknownKey), AuthMode::Builtin) => {
                let fresh = issuer::verifying_keys(pool).await.map_err(Rejection::Api)?;
                let result = token::verify(token, &fresh, &self.validation, now);
                *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
                result?
            }
            (result, _) => result?,
        };
        if self.config.mode == AuthMode::Builtin {
            let id = claims.jti.as_deref().ok_or(Rejection::Token(TokenError::Malformed("the token has no id (jti)")))?;
            if !db::auth::is_active(pool, id).await.map_err(|error| Rejection::Api(error.into()))? {
                return Err(Rejection::Token(TokenError::Revoked));
            }
        }
        Ok(claims)
    }

    /// Builds a 401 with a challenge that names the scope the request needs.
    fn challenge(&self, need: Need<'_>, error: Option<&str>, message: &str) -> ApiError {
        let scope = match need {
            Need::Repository(gun, Action::Pull) => Some(format!("repository:{gun}:pull")),
            // Publishing reads the current metadata first.
            Need::Repository(gun, Action::Push) => Some(format!("repository:{gun}:pull,push")),
            Need::Repository(gun, Action::All) => Some(format!("repository:{gun}:*")),
            Need::Admin => Some("admin:*:*".to_owned()),
            Need::Any => None,
        };
        let mut value = format!("Bearer realm=\"{}\",service=\"{}\"", self.config.realm, self.config.service);
        if let Some(scope) = scope {
            value.push_str(&format!(",scope=\"{scope}\""));
        }
        if let Some(error) = error {
            value.push_str(&format!(",error=\"{error}\""));
        }
        let mut api_error = ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message.to_owned());
        if let Ok(value) = HeaderValue::from_str(&value) {
            api_error = api_error.with_header(header::WWW_AUTHENTICATE, value);
        }
        api_error
    }
}

enum Rejection {
    Token(TokenError),
    Api(ApiError),
}

impl From<TokenError> for Rejection {
    fn from(error: TokenError) -> Rejection {
        Rejection::Token(error)
    }
}

/// Returns the token of an `Authorization: Bearer` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}
