//! The methods of `feige_call`: the rows of the shared method table
//! (`feige_protocol::json`), each served by its one request through the Rust client, except
//! the few this SDK serves itself ([`custom`]): those that keep client state (login, resume,
//! profile, revoked session), resend (`room_send`, `red_packet_send` with a generated
//! `client_msg_id`), check a nonce (`ping`) or page through a whole sync; and the transfers
//! and `cancel` ([`files`]: the table's local rows of files, with progress events and
//! cancellation).
//!
//! A method's params are read synchronously — so bad params are refused by `feige_call`
//! itself, before a request id is handed out — and the returned future performs the call on
//! the SDK's runtime and yields the result JSON. To add a method: add its row to the shared
//! table (and `docs/sdk.md`); a custom handler joins [`custom::METHODS`] (or, for files,
//! [`files::METHODS`]) only when one request does not do. A family's file takes what a method is from `base`, not from this file, so
//! no import cycle forms.

use std::time::Duration;

use feige_client::ClientError;
use feige_protocol::json::{self as table, Serve};

use crate::json::{Params, Refusal};

mod base;
mod codes;
mod custom;
pub(crate) mod files;

use base::{call, Method};
pub(crate) use base::{Call, Conn, Host, Reply, Slot};

/// The local methods the client serves inside `feige_call` itself, with no connection
/// (`crate::client`: the outbox and the reconnect).
#[cfg(test)]
pub(crate) const IMMEDIATE: &[&str] = &["reconnect_now", "cancel_send"];

/// The handlers of this SDK's own, by name: [`custom`]'s, [`codes`]' `login_code`, then the
/// local methods of files.
const HANDLERS: &[&[(&str, Method)]] = &[custom::METHODS, codes::METHODS, files::METHODS];

/// The handler of this SDK's own for `name`, if it has one.
fn handler(name: &str) -> Option<Method> {
    HANDLERS
        .iter()
        .flat_map(|h| h.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
}

/// Whether `name` is a method of `feige_call`.
pub(crate) fn exists(name: &str) -> bool {
    table::find(name).is_some()
}

/// The call of method `name` with `params`; `None` for an unknown method.
pub(crate) fn prepare(name: &str, params: &Params, conn: Conn) -> Option<Result<Call, Refusal>> {
    let row = table::find(name)?;
    if let Some(custom) = handler(name) {
        return Some(custom(params, conn));
    }
    match row.serve {
        Serve::Request(build) => Some(one_request(row.name, build, params, conn)),
        // Every local method has a custom handler (a test checks it).
        Serve::Local(_) => None,
    }
}

/// Serves a row by its one request: params → request → the client → result JSON.
fn one_request(
    name: &'static str,
    build: fn(&Params) -> Result<table::Prepared, table::ParamError>,
    params: &Params,
    conn: Conn,
) -> Result<Call, Refusal> {
    let prepared = build(params)?;
    call(async move {
        let answer = conn.client().await?.request(prepared.request).await?;
        (prepared.answer)(answer)
            .ok_or_else(|| ClientError::Protocol(format!("unexpected answer to {name}")))
    })
}

/// How long a call may take from `feige_call`, waiting for a connection included: the request
/// timeout, except for `send_message`, which keeps resending across reconnects for as long as
/// the SDK does ([`feige_client::SEND_RETRY_WINDOW`], or the request timeout if longer).
pub(crate) fn time_limit(name: &str, request_timeout: Duration) -> Duration {
    match name {
        "send_message" => request_timeout.max(feige_client::SEND_RETRY_WINDOW),
        _ => request_timeout,
    }
}

/// Whether `name` is a transfer: its time limit bounds only its wait for a connection, and
/// once issued it runs until done, failed or cancelled (each of its requests has the request
/// timeout).
pub(crate) fn unbounded(name: &str) -> bool {
    files::TRANSFERS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every custom handler serves a row of the shared table, and every row the table
    /// cannot serve by one request has one.
    #[test]
    fn custom_handlers_cover_the_local_rows() {
        for (name, _) in HANDLERS.iter().flat_map(|h| h.iter()) {
            assert!(exists(name), "{name} is not in the shared table");
        }
        for row in table::methods() {
            if let Serve::Local(_) = row.serve {
                assert!(
                    handler(row.name).is_some() || IMMEDIATE.contains(&row.name),
                    "{} needs a custom handler",
                    row.name
                );
            }
        }
        assert!(exists("login"));
        assert!(!exists("Login"));
    }

    /// The method names of a Markdown table in `doc` under `heading`: the first cells that
    /// are one backquoted word.
    fn documented(doc: &str, heading: &str) -> Vec<String> {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../docs")
                .join(doc),
        )
        .unwrap_or_default();
        let section = text.split(heading).nth(1).unwrap_or_default();
        let section = section.split("\n## ").next().unwrap_or_default();
        section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`'))
            .filter(|(name, rest)| rest.trim_start().starts_with('|') && !name.contains(' '))
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// The shared table, the methods this SDK answers, `docs/sdk.md` and the WebSocket
    /// command reference (`docs/websocket.md`) name the same methods in the same order.
    #[test]
    fn the_table_the_sdk_and_the_docs_agree() {
        let table: Vec<String> = table::methods().map(|m| m.name.to_owned()).collect();
        let answered: Vec<String> = table.iter().filter(|n| exists(n)).cloned().collect();
        assert_eq!(answered, table, "feige_call answers every row");
        let sdk = documented("sdk.md", "## Methods of `feige_call`");
        assert_eq!(
            sdk, table,
            "docs/sdk.md lists the table's methods in its order"
        );
        let ws = documented("websocket.md", "## Commands");
        assert_eq!(
            ws, table,
            "docs/websocket.md lists the table's methods in its order"
        );
    }
}
