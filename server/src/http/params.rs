//! Parameters of the API and admin routes, from the query string and a form or JSON body
//! alike, and the mapping of request errors to HTTP answers.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use feige_protocol::ErrorCode;

use super::reply::HttpError;
use crate::error::RequestError;

/// A route's named parameters: the query string's, then the body's (a form, or a JSON object
/// whose strings, numbers and booleans count as text), the body winning.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

/// A route takes `Params` as its last argument: the query string and the body, read once
/// here instead of in every handler.
impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = HttpError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, HttpError> {
        use axum::extract::{FromRequest, FromRequestParts, Query};
        let (mut parts, body) = req.into_parts();
        let Query(query) = Query::<HashMap<String, String>>::from_request_parts(&mut parts, state)
            .await
            .map_err(|e| HttpError::bad_request(e.body_text()))?;
        let headers = parts.headers.clone();
        let req = axum::extract::Request::from_parts(parts, body);
        let body = <Bytes as FromRequest<S>>::from_request(req, state)
            .await
            .map_err(|e| HttpError::new(e.status(), e.body_text()))?;
        Params::parse(query, &headers, &body)
    }
}

impl Params {
    /// Reads `query` and `body` (by its content type; a body without one is tried as JSON,
    /// then as a form).
    ///
    /// # Errors
    /// 400 for a body that is neither.
    pub(crate) fn parse(
        query: HashMap<String, String>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Params, HttpError> {
        let mut map = query;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Params(map));
        }
        let kind = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let form = kind.starts_with("application/x-www-form-urlencoded");
        let fields = if form {
            form_fields(body)?
        } else {
            match json_fields(body) {
                Ok(f) => f,
                Err(e) if kind.is_empty() => form_fields(body).map_err(|_| e)?,
                Err(e) => return Err(e),
            }
        };
        map.extend(fields);
        Ok(Params(map))
    }

    /// The text of `name`, if given.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The text of `name`.
    ///
    /// # Errors
    /// 400 when it is missing or blank.
    pub(crate) fn required(&self, name: &str) -> Result<&str, HttpError> {
        self.text(name)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| HttpError::bad_request(format!("missing parameter {name}")))
    }

    /// `name` as a positive id (below 2^63).
    ///
    /// # Errors
    /// 400 when it is missing or not such a number.
    pub(crate) fn id(&self, name: &str) -> Result<u64, HttpError> {
        let text = self.required(name)?;
        text.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (1..1 << 63).contains(n))
            .ok_or_else(|| HttpError::bad_request(format!("{name} must be a positive integer")))
    }

    /// `name` as a number, `default` when it is not given.
    ///
    /// # Errors
    /// 400 when it is given and not a non-negative integer.
    pub(crate) fn number(&self, name: &str, default: u64) -> Result<u64, HttpError> {
        match self.text(name).map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(default),
            Some(t) => t.parse::<u64>().map_err(|_| {
                HttpError::bad_request(format!("{name} must be a non-negative integer"))
            }),
        }
    }
}

fn form_fields(body: &Bytes) -> Result<HashMap<String, String>, HttpError> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map(|v| v.into_iter().collect())
        .map_err(|_| HttpError::bad_request("the body is not a valid form"))
}

fn json_fields(body: &Bytes) -> Result<HashMap<String, String>, HttpError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| HttpError::bad_request("the body is not valid JSON"))?;
    let serde_json::Value::Object(object) = value else {
        return Err(HttpError::bad_request("the JSON body must be an object"));
    };
    let mut map = HashMap::with_capacity(object.len());
    for (k, v) in object {
        let text = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => continue,
            _ => return Err(HttpError::bad_request(format!("{k} must be a plain value"))),
        };
        map.insert(k, text);
    }
    Ok(map)
}

impl From<RequestError> for HttpError {
    fn from(e: RequestError) -> Self {
        let status = match e.code {
            ErrorCode::InvalidArgument | ErrorCode::TooLarge => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Busy | ErrorCode::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        HttpError::new(status, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: Option<&str>, body: &str) -> Result<Params, HttpError> {
        let mut headers = HeaderMap::new();
        if let Some(k) = kind {
            headers.insert(CONTENT_TYPE, k.parse().unwrap());
        }
        let query = HashMap::from([("appId".to_owned(), "1".to_owned())]);
        Params::parse(query, &headers, &Bytes::from(body.to_owned()))
    }

    #[test]
    fn query_form_and_json() {
        let p = parse(Some("application/json"), r#"{"userId": 7, "ok": true}"#).unwrap();
        assert_eq!((p.id("appId").unwrap(), p.id("userId").unwrap()), (1, 7));
        assert_eq!(p.text("ok"), Some("true"));
        let p = parse(
            Some("application/x-www-form-urlencoded"),
            "message=a+b&appId=2",
        )
        .unwrap();
        assert_eq!(
            (p.text("message"), p.id("appId").unwrap()),
            (Some("a b"), 2)
        );
        assert_eq!(parse(None, "x=1").unwrap().text("x"), Some("1"));
        assert!(parse(Some("application/json"), "[1]").is_err());
        assert!(parse(Some("application/json"), "{").is_err());
        let p = parse(None, "").unwrap();
        assert!(p.id("userId").is_err() && p.required("message").is_err());
        assert!(p.number("limit", 5).unwrap() == 5);
    }
}
