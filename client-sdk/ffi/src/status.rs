//! Status codes: what every fallible export returns and every completion carries.

use feige_client::{code_name, ClientError};

/// The result of a call, and the status of a completion event.
///
/// `FEIGE_OK` is 0, `FEIGE_NO_EVENT` is the one positive (not an error), errors are negative.
/// The numbers are a public contract: they are never renumbered or reused; new codes take new
/// numbers.
#[repr(i32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeigeStatus {
    /// Success.
    FEIGE_OK = 0,
    /// `feige_poll_event` / `feige_wait_event`: no event is waiting (not an error).
    FEIGE_NO_EVENT = 1,
    /// A required pointer argument was NULL.
    FEIGE_ERR_NULL = -1,
    /// A string argument was not valid UTF-8.
    FEIGE_ERR_UTF8 = -2,
    /// A JSON argument was not well-formed JSON.
    FEIGE_ERR_JSON = -3,
    /// The JSON was well-formed but not what the call expects (a missing or mistyped field).
    FEIGE_ERR_PARAMS = -4,
    /// `feige_call` was given a method name it does not know.
    FEIGE_ERR_UNKNOWN_METHOD = -5,
    /// The client was shut down: it takes no more requests, and once its events are read the
    /// event functions return this too.
    FEIGE_ERR_SHUT_DOWN = -6,
    /// Completion of a request that `feige_client_shutdown` cancelled.
    FEIGE_ERR_CANCELLED = -7,
    /// No answer in time (a request, or the graceful part of `feige_client_shutdown`).
    FEIGE_ERR_TIMEOUT = -8,
    /// There was no connection to the server, or it was lost while the request was in flight.
    FEIGE_ERR_DISCONNECTED = -9,
    /// The server refused the request; the event's JSON names the server's error code.
    FEIGE_ERR_SERVER = -10,
    /// The server sent something this SDK does not understand.
    FEIGE_ERR_PROTOCOL = -11,
    /// Too many requests are waiting for their completion; try again after draining events.
    FEIGE_ERR_BUSY = -12,
    /// The operating system refused a resource (thread, socket pair).
    FEIGE_ERR_IO = -13,
    /// Not available on this platform (the wakeup descriptor outside Unix).
    FEIGE_ERR_UNSUPPORTED = -14,
    /// A bug inside the SDK was caught at the API boundary; the client may be unusable.
    FEIGE_ERR_PANIC = -15,
}

use FeigeStatus::*;

/// Every status, for lookups and tests.
const ALL: [FeigeStatus; 17] = [
    FEIGE_OK,
    FEIGE_NO_EVENT,
    FEIGE_ERR_NULL,
    FEIGE_ERR_UTF8,
    FEIGE_ERR_JSON,
    FEIGE_ERR_PARAMS,
    FEIGE_ERR_UNKNOWN_METHOD,
    FEIGE_ERR_SHUT_DOWN,
    FEIGE_ERR_CANCELLED,
    FEIGE_ERR_TIMEOUT,
    FEIGE_ERR_DISCONNECTED,
    FEIGE_ERR_SERVER,
    FEIGE_ERR_PROTOCOL,
    FEIGE_ERR_BUSY,
    FEIGE_ERR_IO,
    FEIGE_ERR_UNSUPPORTED,
    FEIGE_ERR_PANIC,
];

impl FeigeStatus {
    /// The status with this number, if there is one.
    pub fn from_code(code: i32) -> Option<FeigeStatus> {
        ALL.into_iter().find(|s| *s as i32 == code)
    }

    /// Short upper-case name used as the `"code"` of error JSON, e.g. `"CANCELLED"`.
    pub fn name(self) -> &'static str {
        match self {
            FEIGE_OK => "OK",
            FEIGE_NO_EVENT => "NO_EVENT",
            FEIGE_ERR_NULL => "NULL",
            FEIGE_ERR_UTF8 => "UTF8",
            FEIGE_ERR_JSON => "JSON",
            FEIGE_ERR_PARAMS => "PARAMS",
            FEIGE_ERR_UNKNOWN_METHOD => "UNKNOWN_METHOD",
            FEIGE_ERR_SHUT_DOWN => "SHUT_DOWN",
            FEIGE_ERR_CANCELLED => "CANCELLED",
            FEIGE_ERR_TIMEOUT => "TIMEOUT",
            FEIGE_ERR_DISCONNECTED => "DISCONNECTED",
            FEIGE_ERR_SERVER => "SERVER",
            FEIGE_ERR_PROTOCOL => "PROTOCOL",
            FEIGE_ERR_BUSY => "BUSY",
            FEIGE_ERR_IO => "IO",
            FEIGE_ERR_UNSUPPORTED => "UNSUPPORTED",
            FEIGE_ERR_PANIC => "PANIC",
        }
    }

    /// Static NUL-terminated English text, for `feige_status_str`.
    pub fn text(self) -> &'static std::ffi::CStr {
        match self {
            FEIGE_OK => c"ok",
            FEIGE_NO_EVENT => c"no event is waiting",
            FEIGE_ERR_NULL => c"a required pointer argument was NULL",
            FEIGE_ERR_UTF8 => c"a string argument is not valid UTF-8",
            FEIGE_ERR_JSON => c"a JSON argument is not well-formed",
            FEIGE_ERR_PARAMS => c"the JSON parameters do not match what the call expects",
            FEIGE_ERR_UNKNOWN_METHOD => c"unknown method",
            FEIGE_ERR_SHUT_DOWN => c"the client was shut down",
            FEIGE_ERR_CANCELLED => c"the request was cancelled by shutdown",
            FEIGE_ERR_TIMEOUT => c"timed out",
            FEIGE_ERR_DISCONNECTED => c"not connected to the server",
            FEIGE_ERR_SERVER => c"the server refused the request",
            FEIGE_ERR_PROTOCOL => c"the server sent something unexpected",
            FEIGE_ERR_BUSY => c"too many requests are waiting for completion",
            FEIGE_ERR_IO => c"the operating system refused a resource",
            FEIGE_ERR_UNSUPPORTED => c"not supported on this platform",
            FEIGE_ERR_PANIC => c"internal error in the SDK",
        }
    }

    /// The status of a failed client call.
    pub fn of_error(e: &ClientError) -> FeigeStatus {
        match e {
            // The error JSON's message says what failed in TLS.
            ClientError::Io(_) | ClientError::Closed | ClientError::Tls(_) => {
                FEIGE_ERR_DISCONNECTED
            }
            ClientError::Timeout => FEIGE_ERR_TIMEOUT,
            ClientError::Server { .. } => FEIGE_ERR_SERVER,
            ClientError::Protocol(_) => FEIGE_ERR_PROTOCOL,
            ClientError::Cancelled => FEIGE_ERR_CANCELLED,
            ClientError::Invalid(_) => FEIGE_ERR_PARAMS,
            // A kind newer than this mapping: the error JSON's message says what failed.
            _ => FEIGE_ERR_DISCONNECTED,
        }
    }

    /// The `"code"` of a failed client call's error JSON: the server's code name
    /// (e.g. `USERNAME_TAKEN`) for server errors, else the status name.
    pub fn error_code(e: &ClientError) -> &'static str {
        match e.code() {
            Some(code) => code_name(code),
            None => Self::of_error(e).name(),
        }
    }
}

/// Kinds of events in a client's queue.
#[repr(i32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeigeEventKind {
    /// The completion of a `feige_call` request: `feige_event_request_id` names it,
    /// `feige_event_status` tells how it ended, the JSON is its result or `{"error":{...}}`.
    FEIGE_EVENT_RESPONSE = 1,
    /// Something the server pushed (a new message, a kick, ...): JSON with a `"type"`.
    FEIGE_EVENT_PUSH = 2,
    /// The connection changed state: JSON with a `"state"`.
    FEIGE_EVENT_STATE = 3,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_round_trip() {
        for s in ALL {
            assert_eq!(FeigeStatus::from_code(s as i32), Some(s));
            assert!(!s.text().to_bytes().is_empty());
        }
        let mut codes: Vec<i32> = ALL.iter().map(|s| *s as i32).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
        assert_eq!(FeigeStatus::from_code(-1000), None);
    }
}
