//! Who may call an HTTP route: extractors that check `Authorization: Bearer <token>`.
//!
//! [`ApiCaller`]: the configured `api_token`. [`AdminCaller`]: the `admin_token`, or the
//! session token (hex) of a user named in the `admins` config list. Tokens are compared in
//! constant time (HMAC verification under a per-process key).
// The route modules that plug into `http/mod.rs` (api, admin, metrics, pages) use these.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ring::hmac;
use ring::rand::SystemRandom;

use feige_protocol::json::params::unhex;

use super::reply::HttpError;
use crate::account::{token_hash, TOKEN_LEN};
use crate::Shared;

/// A caller that presented the `api_token`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiCaller;

/// A caller with the admin role.
#[derive(Debug, Clone)]
pub(crate) enum AdminCaller {
    /// Presented the `admin_token`.
    Token,
    /// Presented the session token of this admin user (id, username).
    User(u64, String),
}

impl FromRequestParts<Arc<Shared>> for ApiCaller {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = shared.config.api_token.as_deref() else {
            return Err(HttpError::forbidden(
                "the HTTP API is disabled: no api_token is configured",
            ));
        };
        let presented = bearer(parts)?;
        if tokens_equal(presented, expected) {
            Ok(ApiCaller)
        } else {
            Err(HttpError::unauthorized("wrong API token"))
        }
    }
}

impl FromRequestParts<Arc<Shared>> for AdminCaller {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let presented = bearer(parts)?.to_owned();
        admin(shared, &presented).await
    }
}

/// Checks `presented` as the admin token or an admin user's hex session token.
///
/// # Errors
/// 401 for an unknown token, 403 for a user who is not an admin, 500 for a store failure.
pub(crate) async fn admin(shared: &Shared, presented: &str) -> Result<AdminCaller, HttpError> {
    if let Some(expected) = shared.config.admin_token.as_deref() {
        if tokens_equal(presented, expected) {
            return Ok(AdminCaller::Token);
        }
    }
    let Some(token) = unhex(presented).filter(|t| t.len() == TOKEN_LEN) else {
        return Err(HttpError::unauthorized("wrong admin token"));
    };
    let Some(session) = shared.store.session(token_hash(&token)).await? else {
        return Err(HttpError::unauthorized(
            "invalid, revoked or expired session token",
        ));
    };
    if session.expires_at_ms <= feige_storage::now_ms() {
        return Err(HttpError::unauthorized("session expired; log in again"));
    }
    let Some(user) = shared.store.user_by_id(session.user_id).await? else {
        return Err(HttpError::unauthorized("no such user"));
    };
    let is_admin = shared
        .config
        .admins
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&user.username));
    if is_admin {
        Ok(AdminCaller::User(user.id, user.username))
    } else {
        Err(HttpError::forbidden(format!(
            "{} is not an admin",
            user.username
        )))
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(parts: &Parts) -> Result<&str, HttpError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| HttpError::unauthorized("missing Authorization: Bearer <token>"))?;
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| HttpError::unauthorized("Authorization must be Bearer <token>"))
}

/// Whether two tokens are equal, in time that depends on neither's content.
pub(crate) fn tokens_equal(presented: &str, expected: &str) -> bool {
    static KEY: OnceLock<Option<hmac::Key>> = OnceLock::new();
    let key = KEY.get_or_init(|| hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).ok());
    match key {
        Some(key) => {
            let tag = hmac::sign(key, expected.as_bytes());
            hmac::verify(key, presented.as_bytes(), tag.as_ref()).is_ok()
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_content() {
        assert!(tokens_equal("0123456789abcdef", "0123456789abcdef"));
        assert!(!tokens_equal("0123456789abcdeF", "0123456789abcdef"));
        assert!(!tokens_equal("0123456789abcde", "0123456789abcdef"));
        assert!(!tokens_equal("", "0123456789abcdef"));
    }
}
