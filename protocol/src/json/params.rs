//! Reading a method's params: a JSON object whose ids are decimal strings (or non-negative
//! integers), times unix milliseconds.

use serde_json::{Map, Value};

/// Why params were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The text is not well-formed JSON.
    #[error("{0}")]
    Json(String),
    /// The JSON is not what the method takes (a missing field, a wrong type).
    #[error("{0}")]
    Params(String),
}

impl ParamError {
    /// A [`ParamError::Params`] with this text.
    pub fn params(message: impl Into<String>) -> Self {
        ParamError::Params(message.into())
    }
}

/// A params object.
#[derive(Debug, Default, Clone)]
pub struct Params(Map<String, Value>);

impl Params {
    /// Parses a JSON object (`None` or `null` = no params, as `{}`).
    ///
    /// # Errors
    /// [`ParamError::Json`] when not well-formed, [`ParamError::Params`] when not an object.
    pub fn parse(text: Option<&str>) -> Result<Params, ParamError> {
        let Some(text) = text else {
            return Ok(Params::default());
        };
        match serde_json::from_str::<Value>(text) {
            Ok(v) => Params::from_value(v),
            Err(e) => Err(ParamError::Json(e.to_string())),
        }
    }

    /// Params from a parsed value: an object, or `null` for none.
    ///
    /// # Errors
    /// [`ParamError::Params`] for anything else.
    pub fn from_value(v: Value) -> Result<Params, ParamError> {
        match v {
            Value::Object(map) => Ok(Params(map)),
            Value::Null => Ok(Params::default()),
            _ => Err(ParamError::params("params must be a JSON object")),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A required string.
    ///
    /// # Errors
    /// Missing, or not a string.
    pub fn string(&self, key: &str) -> Result<String, ParamError> {
        self.opt_string(key)?
            .ok_or_else(|| ParamError::params(format!("missing \"{key}\"")))
    }

    /// An optional string.
    ///
    /// # Errors
    /// Not a string.
    pub fn opt_string(&self, key: &str) -> Result<Option<String>, ParamError> {
        self.opt_str(key).map(|s| s.map(str::to_owned))
    }

    /// An optional string, borrowed.
    ///
    /// # Errors
    /// Not a string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>, ParamError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ParamError::params(format!("\"{key}\" must be a string"))),
        }
    }

    /// A required id.
    ///
    /// # Errors
    /// Missing, or not an id.
    pub fn id(&self, key: &str) -> Result<u64, ParamError> {
        self.opt_id(key)?
            .ok_or_else(|| ParamError::params(format!("missing \"{key}\"")))
    }

    /// An optional id.
    ///
    /// # Errors
    /// Not an id.
    pub fn opt_id(&self, key: &str) -> Result<Option<u64>, ParamError> {
        self.get(key).map(|v| id_of(key, v)).transpose()
    }

    /// An optional unsigned 32-bit number (a count or limit).
    ///
    /// # Errors
    /// Not such a number.
    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>, ParamError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    ParamError::params(format!("\"{key}\" must be a number from 0 to 2^32-1"))
                }),
        }
    }

    /// An optional signed 64-bit number (a time in unix ms).
    ///
    /// # Errors
    /// Not an integer.
    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>, ParamError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| ParamError::params(format!("\"{key}\" must be an integer"))),
        }
    }

    /// An optional array.
    ///
    /// # Errors
    /// Not an array.
    pub fn opt_array(&self, key: &str) -> Result<Option<&Vec<Value>>, ParamError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(ParamError::params(format!("\"{key}\" must be an array"))),
        }
    }

    /// An optional boolean.
    ///
    /// # Errors
    /// Not a boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ParamError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ParamError::params(format!(
                "\"{key}\" must be true or false"
            ))),
        }
    }

    /// A required boolean.
    ///
    /// # Errors
    /// Missing, or not a boolean.
    pub fn bool(&self, key: &str) -> Result<bool, ParamError> {
        self.opt_bool(key)?
            .ok_or_else(|| ParamError::params(format!("missing \"{key}\"")))
    }

    /// An optional array of ids (empty when absent).
    ///
    /// # Errors
    /// Not an array of ids.
    pub fn ids(&self, key: &str) -> Result<Vec<u64>, ParamError> {
        self.opt_array(key)?
            .into_iter()
            .flatten()
            .map(|v| id_of(key, v))
            .collect()
    }

    /// Params of one element of an array param.
    ///
    /// # Errors
    /// The element is not an object.
    pub fn of(key: &str, v: &Value) -> Result<Params, ParamError> {
        match v {
            Value::Object(map) => Ok(Params(map.clone())),
            _ => Err(ParamError::params(format!(
                "the elements of \"{key}\" must be objects"
            ))),
        }
    }
}

/// Where a method's builder reads its params: the generic [`Params`], or the typed struct of
/// the fast path (`direct`), so that one builder maps both.
pub(super) trait Fields {
    /// An optional id (see [`Params::opt_id`]).
    fn opt_id(&self, key: &str) -> Result<Option<u64>, ParamError>;
    /// An optional string (see [`Params::opt_str`]).
    fn opt_str(&self, key: &str) -> Result<Option<&str>, ParamError>;
    /// An optional boolean (see [`Params::opt_bool`]).
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, ParamError>;
    /// An array of ids, empty when absent (see [`Params::ids`]).
    fn ids(&self, key: &str) -> Result<Vec<u64>, ParamError>;
}

impl Fields for Params {
    fn opt_id(&self, key: &str) -> Result<Option<u64>, ParamError> {
        Params::opt_id(self, key)
    }
    fn opt_str(&self, key: &str) -> Result<Option<&str>, ParamError> {
        Params::opt_str(self, key)
    }
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, ParamError> {
        Params::opt_bool(self, key)
    }
    fn ids(&self, key: &str) -> Result<Vec<u64>, ParamError> {
        Params::ids(self, key)
    }
}

/// An id: a decimal string or a non-negative integer.
fn id_of(key: &str, v: &Value) -> Result<u64, ParamError> {
    let parsed = match v {
        Value::String(s) => s.parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        ParamError::params(format!(
            "\"{key}\" must be an id: a decimal string such as \"42\""
        ))
    })
}

/// Lower-case hex of bytes (session tokens).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Standard base64 with padding (RFC 4648), for file data in JSON results.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                s.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Bytes of a hex string, either case.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_strings_and_integers() {
        let p = Params::parse(Some(
            r#"{"a":"18446744073709551615","b":7,"c":-1,"d":"x","e":1.5}"#,
        ))
        .unwrap_or_default();
        assert_eq!(p.id("a"), Ok(u64::MAX));
        assert_eq!(p.id("b"), Ok(7));
        for bad in ["c", "d", "e"] {
            assert!(matches!(p.id(bad), Err(ParamError::Params(_))));
        }
        assert_eq!(p.opt_id("missing"), Ok(None));
    }

    #[test]
    fn malformed_and_non_object_params() {
        assert!(matches!(Params::parse(Some("{")), Err(ParamError::Json(_))));
        assert!(matches!(
            Params::parse(Some("[1]")),
            Err(ParamError::Params(_))
        ));
        assert!(Params::parse(None).is_ok());
    }

    #[test]
    fn hex_round_trip() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&bytes), "0001abff");
        assert_eq!(unhex("0001ABff").as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
