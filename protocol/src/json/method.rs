//! What a row of the method table is: its name and how it is served.

use serde_json::Value;

use super::params::{ParamError, Params};
use crate::{RequestKind, ResponseResult};

/// Turns the answer to a method's request into its result JSON; `None` when the answer is
/// of another kind than the request's (a protocol error).
pub type Answer = Box<dyn FnOnce(ResponseResult) -> Option<Value> + Send>;

/// A method call made ready: the request to send and how to read its answer.
pub struct Prepared {
    /// The request.
    pub request: RequestKind,
    /// Reads the answer (an `Error` answer never reaches it).
    pub answer: Answer,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// `request`, read by `answer`.
    pub fn new(
        request: RequestKind,
        answer: impl FnOnce(ResponseResult) -> Option<Value> + Send + 'static,
    ) -> Self {
        Prepared {
            request,
            answer: Box::new(answer),
        }
    }
}

/// How a method is served.
#[derive(Debug, Clone, Copy)]
pub enum Serve {
    /// By one request: params → [`Prepared`].
    Request(fn(&Params) -> Result<Prepared, ParamError>),
    /// Only by the SDK, which reads or writes local files (why, for other transports).
    Local(&'static str),
}

/// A row of the method table.
#[derive(Debug, Clone, Copy)]
pub struct Method {
    /// The name (`feige_call`'s method, the WebSocket `cmd`).
    pub name: &'static str,
    /// How it is served.
    pub serve: Serve,
}

/// `Prepared::new(request, |r| match r { ResponseResult::$variant($x) => Some($json), _ => None })`.
macro_rules! answer {
    ($request:expr, $variant:ident($x:pat) => $json:expr) => {
        $crate::json::method::Prepared::new($request, move |r| match r {
            $crate::ResponseResult::$variant($x) => Some($json),
            _ => None,
        })
    };
}
pub(crate) use answer;
