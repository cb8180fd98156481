//! The method table's files (`docs/sdk.md`, "Files"): transfers, which read or write local
//! files and so are served by the SDK alone, and the one-request methods of metadata, batch
//! downloads, speech-to-text, stickers and file offers. File messages are sent with
//! `send_message` and a `"file_id"`.

use serde_json::{json, Value};

use super::method::{answer, Method, Prepared, Serve};
use super::params::{ParamError, Params};
use super::render;
use crate::{pb, RequestKind as K, ResponseResult};

const fn row(name: &'static str, f: fn(&Params) -> Result<Prepared, ParamError>) -> Method {
    Method {
        name,
        serve: Serve::Request(f),
    }
}

const fn local(name: &'static str, why: &'static str) -> Method {
    Method {
        name,
        serve: Serve::Local(why),
    }
}

/// Why a transfer is the SDK's alone.
const TRANSFER: &str = "it moves a local file in chunks (use the SDK or the CLI)";

/// Files.
pub(super) const METHODS: &[Method] = &[
    local("upload_file", TRANSFER),
    local("download_file", TRANSFER),
    row("file_info", file_info),
    row("download_many", download_many),
    local("set_avatar", TRANSFER),
    row("transcribe", transcribe),
    local(
        "cancel",
        "it cancels a request of the SDK's own (close the WebSocket to drop its requests)",
    ),
    row("add_sticker", add_sticker),
    row("remove_sticker", remove_sticker),
    row("stickers", stickers),
    row("answer_file_offer", answer_file_offer),
];

/// Most items of one `download_many` (the server's limit).
const DOWNLOAD_MANY_ITEMS: usize = 64;

/// `file_info`: `{"file_id"}` → the file `{"file_id","name","size","mime","sha256",
/// "width"?,"height"?,"duration_ms"?,"thumbnail_id"?,"created_at","owner"}`.
fn file_info(p: &Params) -> Result<Prepared, ParamError> {
    let file_id = p.id("file_id")?;
    let r = pb::GetFiles {
        file_ids: vec![file_id],
    };
    Ok(Prepared::new(K::FileInfo(r), move |r| match r {
        ResponseResult::FileInfo(l) => l
            .files
            .iter()
            .find(|f| f.file_id == file_id)
            .map(render::file),
        _ => None,
    }))
}

/// `download_many`: `{"items":[{"file_id","offset"?,"length"?,"thumbnail"?}]}` (at most 64) →
/// `{"items":[{"file_id","offset","size","data","truncated"} or {"file_id","error"}]}`, in
/// order, `data` in base64, all within one 1 MiB answer.
fn download_many(p: &Params) -> Result<Prepared, ParamError> {
    let list = p.opt_array("items")?.cloned().unwrap_or_default();
    if list.is_empty() || list.len() > DOWNLOAD_MANY_ITEMS {
        return Err(ParamError::params(format!(
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
    Ok(
        answer!(K::DownloadMany(pb::DownloadMany { items }), DownloadMany(l) => {
            let items: Vec<Value> = l.items.iter().map(render::file_data).collect();
            json!({ "items": items })
        }),
    )
}

/// `transcribe`: `{"conversation_id","seq"}` or `{"file_id"}`, `"language"?` →
/// `{"text","engine"}` (and `"conversation_id"`, `"seq"` for a message).
fn transcribe(p: &Params) -> Result<Prepared, ParamError> {
    let (conversation_id, seq, file_id) = match (
        p.opt_id("conversation_id")?,
        p.opt_id("seq")?,
        p.opt_id("file_id")?,
    ) {
        (Some(conversation_id), Some(seq), None) => (conversation_id, seq, 0),
        (None, None, Some(file_id)) => (0, 0, file_id),
        _ => {
            return Err(ParamError::params(
                "give either \"conversation_id\" and \"seq\", or \"file_id\"",
            ))
        }
    };
    let r = pb::Transcribe {
        conversation_id,
        seq,
        file_id,
        language: p.opt_string("language")?.unwrap_or_default(),
    };
    Ok(answer!(K::Transcribe(r), Transcribe(t) => render::transcript(&t)))
}

/// The sticker list of a sticker request's answer (any of the three sticker answers, as the
/// Rust client reads them).
fn sticker_list(request: K) -> Prepared {
    Prepared::new(request, |r| match r {
        ResponseResult::StickerAdd(l)
        | ResponseResult::StickerRemove(l)
        | ResponseResult::Stickers(l) => Some(render::files(&l.files)),
        _ => None,
    })
}

/// `add_sticker`: `{"file_id"}` (an image) → `{"files":[file...]}`, the stickers newest first.
fn add_sticker(p: &Params) -> Result<Prepared, ParamError> {
    let file_id = p.id("file_id")?;
    Ok(sticker_list(K::StickerAdd(pb::AddSticker { file_id })))
}

/// `remove_sticker`: `{"file_id"}` → `{"files":[file...]}`.
fn remove_sticker(p: &Params) -> Result<Prepared, ParamError> {
    let file_id = p.id("file_id")?;
    Ok(sticker_list(K::StickerRemove(pb::RemoveSticker {
        file_id,
    })))
}

/// `stickers`: `{}` → `{"files":[file...]}`.
fn stickers(_: &Params) -> Result<Prepared, ParamError> {
    Ok(sticker_list(K::Stickers(pb::ListStickers {})))
}

/// `answer_file_offer`: `{"conversation_id","seq","accept"}` →
/// `{"conversation_id","seq","user_id","state"}`.
fn answer_file_offer(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::AnswerFileOffer {
        conversation_id: p.id("conversation_id")?,
        seq: p.id("seq")?,
        accept: p
            .opt_bool("accept")?
            .ok_or_else(|| ParamError::params("missing \"accept\""))?,
    };
    Ok(answer!(K::FileOfferAnswer(r), FileOfferAnswer(o) => render::file_offer(&o)))
}
