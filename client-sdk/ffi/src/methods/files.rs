//! The `feige_call` methods of files that this SDK serves itself (the `Serve::Local` rows of
//! the shared table's files, `docs/sdk.md` "Files"): the transfers, with progress events and
//! `cancel`. The one-request methods of files (metadata, batch downloads, speech-to-text,
//! stickers, file offers) are the table's; file messages are sent with `send_message` and a
//! `"file_id"`.

use serde_json::json;

use super::base::{call, Call, Conn, Method};
use crate::encoding::hex;
use crate::json::{self, Params, Refusal};

/// The local methods of files, by name (each also a row of the shared table).
pub(super) const METHODS: &[(&str, Method)] = &[
    ("upload_file", upload_file),
    ("download_file", download_file),
    ("set_avatar", set_avatar),
    ("cancel", cancel),
];

/// The methods that move a file: bounded by the request timeout only while they wait for a
/// connection, reporting progress, stopped by `cancel`.
pub(super) const TRANSFERS: &[&str] = &["upload_file", "download_file", "set_avatar"];

/// A non-empty `"path"`.
fn path(p: &Params) -> Result<String, Refusal> {
    let path = p.string("path")?;
    if path.is_empty() {
        return Err(Refusal::params("\"path\" must not be empty"));
    }
    Ok(path)
}

/// `upload_file`: `{"path","mime"?,"name"?}` → `{"file_id","size","sha256","deduplicated"}`.
/// Progress events follow the bytes the server holds; `cancel` stops it.
fn upload_file(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let path = path(p)?;
    let mime = p.opt_string("mime")?;
    let name = p.opt_string("name")?;
    call(async move {
        let client = conn.client().await?;
        let up = client
            .upload_file(
                &path,
                mime.as_deref(),
                name.as_deref(),
                conn.progress(),
                conn.cancelled(),
            )
            .await?;
        Ok(json!({
            "file_id": up.file.file_id.to_string(),
            "size": up.file.size,
            "sha256": hex(&up.file.sha256),
            "deduplicated": up.deduplicated,
        }))
    })
}

/// `download_file`: `{"file_id","path","offset"?,"length"?}` → `{"file_id","size","path"}`
/// (`size`: the bytes written). Written through `<path>.part`, renamed when complete.
fn download_file(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let file_id = p.id("file_id")?;
    let path = path(p)?;
    let offset = p.opt_id("offset")?.unwrap_or(0);
    let length = p.opt_id("length")?.unwrap_or(0);
    call(async move {
        let client = conn.client().await?;
        let got = client
            .download_file(
                file_id,
                &path,
                offset,
                length,
                conn.progress(),
                conn.cancelled(),
            )
            .await?;
        Ok(json!({
            "file_id": file_id.to_string(),
            "size": got.size,
            "path": got.path.to_string_lossy(),
        }))
    })
}

/// `set_avatar`: `{"path"}` → the profile, as `whoami` (`avatar` is the uploaded file's id).
fn set_avatar(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let path = path(p)?;
    call(async move {
        let client = conn.client().await?;
        let profile = client
            .set_avatar(&path, conn.progress(), conn.cancelled())
            .await?;
        Ok(json::profile(&profile))
    })
}

/// `cancel`: `{"request_id"}` → `{}`. The request (a transfer, or any other) stops at once
/// and completes with `FEIGE_ERR_CANCELLED`; an upload is discarded on the server, a
/// download keeps its `.part`. Cancelling a request that already completed does nothing.
fn cancel(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let id = p.id("request_id")?;
    // Now, not when this call is issued: that waits for a connection, the transfer need not.
    conn.cancel_request(id);
    call(async move { Ok(json!({})) })
}
