//! JSON in and out of the C ABI: params and the JSON of results and events come from the
//! shared table of `feige_protocol::json` (ids as decimal strings, times in unix ms); this
//! file adds what only the SDK has: refusals, connection states and error completions.

use feige_client::{ClientError, ConnState};
pub(crate) use feige_protocol::json::params::{ParamError, Params};
pub(crate) use feige_protocol::json::render::*;
use serde_json::{json, Value};

use crate::status::FeigeStatus;

/// Why a call was refused: its status, and text for `feige_last_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: FeigeStatus,
    pub(crate) message: String,
}

impl Refusal {
    /// A refusal with the status's own text.
    pub(crate) fn status(status: FeigeStatus) -> Self {
        Refusal {
            status,
            message: status.text().to_string_lossy().into_owned(),
        }
    }

    /// A `FEIGE_ERR_PARAMS` refusal.
    pub(crate) fn params(message: impl Into<String>) -> Self {
        Refusal {
            status: FeigeStatus::FEIGE_ERR_PARAMS,
            message: message.into(),
        }
    }
}

impl From<ParamError> for Refusal {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Json(message) => Refusal {
                status: FeigeStatus::FEIGE_ERR_JSON,
                message,
            },
            ParamError::Params(message) => Refusal::params(message),
        }
    }
}

/// The state event of a connection state.
pub(crate) fn state(s: ConnState) -> Value {
    match s {
        ConnState::Connecting => json!({ "state": "connecting" }),
        ConnState::Connected => json!({ "state": "connected" }),
        ConnState::Disconnected { retry_in } => json!({
            "state": "disconnected",
            "retry_in_ms": u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
        }),
        ConnState::Syncing => json!({ "state": "syncing" }),
        ConnState::Synced => json!({ "state": "synced" }),
        // A state the C SDK does not map yet.
        _ => json!({ "state": "unknown" }),
    }
}

/// The JSON of a failed completion: `{"error":{"code","message"}}`.
pub(crate) fn error(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

/// The JSON of a failed client call; a server error that asks to wait (`RATE_LIMITED`) also
/// carries `"retry_after_ms"`, and `SECOND_FACTOR_REQUIRED` its `"challenge"`.
pub(crate) fn client_error(e: &ClientError) -> Value {
    let message = match e {
        ClientError::Server { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let mut v = error(FeigeStatus::error_code(e), &message);
    if let (Some(wait), Some(obj)) = (e.retry_after(), v["error"].as_object_mut()) {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        obj.insert("retry_after_ms".into(), ms.into());
    }
    if let (Some(challenge), Some(obj)) = (e.challenge(), v["error"].as_object_mut()) {
        obj.insert("challenge".into(), challenge.into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limited_error_carries_its_wait() {
        let limited = ClientError::from(feige_protocol::pb::Error {
            code: feige_protocol::ErrorCode::RateLimited as i32,
            message: "slow down".into(),
            retry_after_ms: 1500,
            challenge: String::new(),
        });
        let v = client_error(&limited);
        assert_eq!(v["error"]["code"], "RATE_LIMITED");
        assert_eq!(v["error"]["message"], "slow down");
        assert_eq!(v["error"]["retry_after_ms"], 1500);
        let plain = client_error(&ClientError::Timeout);
        assert!(plain["error"].get("retry_after_ms").is_none());
        let second = ClientError::from(feige_protocol::pb::Error {
            code: feige_protocol::ErrorCode::SecondFactorRequired as i32,
            message: "answer the challenge".into(),
            retry_after_ms: 0,
            challenge: "c0ffee".into(),
        });
        let v = client_error(&second);
        assert_eq!(v["error"]["code"], "SECOND_FACTOR_REQUIRED");
        assert_eq!(v["error"]["challenge"], "c0ffee");
        assert!(plain["error"].get("challenge").is_none());
    }

    #[test]
    fn malformed_and_non_object_params() {
        let e = Params::parse(Some("{"))
            .map(|_| ())
            .map_err(|e| Refusal::from(e).status);
        assert_eq!(e, Err(FeigeStatus::FEIGE_ERR_JSON));
        let e = Params::parse(Some("[1]"))
            .map(|_| ())
            .map_err(|e| Refusal::from(e).status);
        assert_eq!(e, Err(FeigeStatus::FEIGE_ERR_PARAMS));
        assert!(Params::parse(None).is_ok());
    }
}
