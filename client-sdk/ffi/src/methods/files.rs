//! The `feige_call` methods of files (`docs/sdk.md`, "Files"): transfers with progress
//! events and `cancel`, metadata, batch downloads, the avatar, speech-to-text, stickers and
//! file offers. File messages are sent with `send_message` and a `"file_id"`.

use feige_client::{pb, TranscribeTarget};
use serde_json::{json, Value};

use super::base::{call, Call, Conn, Method};
use crate::encoding::{base64, hex};
use crate::files_json;
use crate::json::{self, Params, Refusal};

/// The methods of files, by name.
pub(super) const METHODS: &[(&str, Method)] = &[
    ("upload_file", upload_file),
    ("download_file", download_file),
    ("file_info", file_info),
    ("download_many", download_many),
    ("set_avatar", set_avatar),
    ("transcribe", transcribe),
    ("cancel", cancel),
    ("add_sticker", add_sticker),
    ("remove_sticker", remove_sticker),
    ("stickers", stickers),
    ("answer_file_offer", answer_file_offer),
];

/// The methods that move a file: bounded by the request timeout only while they wait for a
/// connection, reporting progress, stopped by `cancel`.
pub(super) const TRANSFERS: &[&str] = &["upload_file", "download_file", "set_avatar"];

/// Most items of one `download_many` (the server's limit).
const DOWNLOAD_MANY_ITEMS: usize = 64;

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

/// `file_info`: `{"file_id"}` → the file `{"file_id","name","size","mime","sha256",
/// "width"?,"height"?,"duration_ms"?,"thumbnail_id"?,"created_at","owner"}`.
fn file_info(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let file_id = p.id("file_id")?;
    call(async move {
        let files = conn.client().await?.file_info(&[file_id]).await?;
        match files.iter().find(|f| f.file_id == file_id) {
            Some(f) => Ok(files_json::file(f)),
            None => Err(feige_client::ClientError::Protocol(format!(
                "no metadata for file {file_id}"
            ))),
        }
    })
}

/// `download_many`: `{"items":[{"file_id","offset"?,"length"?,"thumbnail"?}]}` (at most 64) →
/// `{"items":[{"file_id","offset","size","data","truncated"} or {"file_id","error"}]}`, in
/// order, `data` in base64, all within one 1 MiB answer.
fn download_many(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let list = p.opt_array("items")?.cloned().unwrap_or_default();
    if list.is_empty() || list.len() > DOWNLOAD_MANY_ITEMS {
        return Err(Refusal::params(format!(
            "\"items\" must hold 1 to {DOWNLOAD_MANY_ITEMS} downloads"
        )));
    }
    let mut items = Vec::with_capacity(list.len());
    for v in &list {
        let item = Params::of("items", v)?;
        items.push(pb::Download {
            file_id: item.id("file_id")?,
            offset: item.opt_id("offset")?.unwrap_or(0),
            length: item.opt_u32("length")?.unwrap_or(0),
            thumbnail: item.opt_bool("thumbnail")?.unwrap_or(false),
        });
    }
    call(async move {
        let got = conn.client().await?.download_many(items).await?;
        let items: Vec<Value> = got.iter().map(file_data).collect();
        Ok(json!({ "items": items }))
    })
}

/// One item of `download_many`'s answer.
fn file_data(d: &pb::FileData) -> Value {
    match &d.error {
        Some(e) => {
            let code = pb::ErrorCode::try_from(e.code).unwrap_or(pb::ErrorCode::Unspecified);
            json!({
                "file_id": d.file_id.to_string(),
                "error": { "code": feige_client::code_name(code), "message": e.message },
            })
        }
        None => json!({
            "file_id": d.file_id.to_string(),
            "offset": d.offset,
            "size": d.size,
            "data": base64(&d.data),
            "truncated": d.truncated,
        }),
    }
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

/// `transcribe`: `{"conversation_id","seq"}` or `{"file_id"}`, `"language"?` →
/// `{"text","engine"}` (and `"conversation_id"`, `"seq"` for a message).
fn transcribe(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let target = match (
        p.opt_id("conversation_id")?,
        p.opt_id("seq")?,
        p.opt_id("file_id")?,
    ) {
        (Some(conversation_id), Some(seq), None) => TranscribeTarget::Message {
            conversation_id,
            seq,
        },
        (None, None, Some(file_id)) => TranscribeTarget::File(file_id),
        _ => {
            return Err(Refusal::params(
                "give either \"conversation_id\" and \"seq\", or \"file_id\"",
            ))
        }
    };
    let language = p.opt_string("language")?.unwrap_or_default();
    call(async move {
        let t = conn.client().await?.transcribe(target, &language).await?;
        Ok(files_json::transcript(&t))
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

/// `add_sticker`: `{"file_id"}` (an image) → `{"files":[file...]}`, the stickers newest first.
fn add_sticker(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let file_id = p.id("file_id")?;
    call(async move {
        let list = conn.client().await?.add_sticker(file_id).await?;
        Ok(files_json::files(&list))
    })
}

/// `remove_sticker`: `{"file_id"}` → `{"files":[file...]}`.
fn remove_sticker(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let file_id = p.id("file_id")?;
    call(async move {
        let list = conn.client().await?.remove_sticker(file_id).await?;
        Ok(files_json::files(&list))
    })
}

/// `stickers`: `{}` → `{"files":[file...]}`.
fn stickers(_: &Params, conn: Conn) -> Result<Call, Refusal> {
    call(async move {
        let list = conn.client().await?.stickers().await?;
        Ok(files_json::files(&list))
    })
}

/// `answer_file_offer`: `{"conversation_id","seq","accept"}` →
/// `{"conversation_id","seq","user_id","state"}`.
fn answer_file_offer(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let conversation_id = p.id("conversation_id")?;
    let seq = p.id("seq")?;
    let accept = p
        .opt_bool("accept")?
        .ok_or_else(|| Refusal::params("missing \"accept\""))?;
    call(async move {
        let o = conn
            .client()
            .await?
            .answer_file_offer(conversation_id, seq, accept)
            .await?;
        Ok(files_json::file_offer(&o))
    })
}
