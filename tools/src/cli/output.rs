//! Printing: results on stdout (a JSON object or a line of text each), errors on stderr.

use std::io::Write;
use std::process::ExitCode;

use feige_client::{code_name, pb, ClientError};
use feige_tools::social::Out;
use feige_tools::{error_json, message_json, message_line, terminal_safe, Failure};
use serde::Serialize;

use super::Ctx;

impl Ctx {
    /// Prints one result: `value` as JSON with --json, else the line `human` makes.
    pub(super) fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        // Human lines carry other users' text: escaped, so it cannot drive the terminal.
        let line = if self.cli.json {
            serde_json::to_string(value).unwrap_or_default()
        } else {
            terminal_safe(&human()).into_owned()
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Prints one social result.
    pub(super) fn out(&self, o: &Out) {
        self.print(&o.json, || o.text.clone());
    }

    /// Prints one message, as JSON or as a chat-log line.
    pub(super) fn print_message(&self, m: &pb::Message) {
        let line = if self.cli.json {
            message_json(m)
        } else {
            message_line(m)
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// Prints an error to stderr, as text or JSON; returns the failure exit code.
pub(crate) fn report(json: bool, e: &anyhow::Error) -> ExitCode {
    let (code, message) = describe(e);
    if json {
        eprintln!("{}", error_json(&code, &message));
    } else {
        eprintln!("error: {}", terminal_safe(&message));
    }
    ExitCode::FAILURE
}

/// The code and text of an error chain.
pub(super) fn describe(e: &anyhow::Error) -> (String, String) {
    let text = format!("{e:#}");
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return (f.code.clone(), text);
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            let code = match c {
                ClientError::Server { code, .. } => code_name(*code),
                ClientError::Io(_) => "IO",
                ClientError::Timeout => "TIMEOUT",
                ClientError::Closed => "CLOSED",
                ClientError::Protocol(_) => "PROTOCOL",
                ClientError::Tls(_) => "TLS",
                ClientError::Cancelled => "CANCELLED",
                ClientError::Invalid(_) => "INVALID_ARGUMENT",
                _ => "ERROR",
            };
            return (code.to_owned(), text);
        }
    }
    ("ERROR".to_owned(), text)
}
