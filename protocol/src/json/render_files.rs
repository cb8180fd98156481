//! The JSON of files and what refers to them: a file's metadata, a message's file,
//! transcript and offer fields, `download_many`'s items, and the `transcribed` and
//! `file_offer_answered` events.

use serde_json::{json, Value};

use super::params::{base64, hex};
use crate::pb;

/// A file: `{"file_id","name","size","mime","sha256","created_at","owner"}`, with `"width"`,
/// `"height"` (images), `"duration_ms"` (voice, video) and `"thumbnail_id"` when the server
/// knows them.
pub fn file(f: &pb::FileInfo) -> Value {
    let mut v = json!({
        "file_id": f.file_id.to_string(),
        "name": f.name,
        "size": f.size,
        "mime": f.mime,
        "sha256": hex(&f.sha256),
        "created_at": f.created_at_ms,
        "owner": f.owner.to_string(),
    });
    if f.width != 0 || f.height != 0 {
        v["width"] = f.width.into();
        v["height"] = f.height.into();
    }
    if f.duration_ms != 0 {
        v["duration_ms"] = f.duration_ms.into();
    }
    if f.thumbnail_id != 0 {
        v["thumbnail_id"] = f.thumbnail_id.to_string().into();
    }
    v
}

/// `{"files":[file...]}` (stickers).
pub fn files(list: &[pb::FileInfo]) -> Value {
    let list: Vec<Value> = list.iter().map(file).collect();
    json!({ "files": list })
}

/// A file offer's state: `"pending"`, `"accepted"`, `"declined"`; `None` for no offer.
pub fn offer_state(state: i32) -> Option<&'static str> {
    match pb::FileOfferState::try_from(state) {
        Ok(pb::FileOfferState::Pending) => Some("pending"),
        Ok(pb::FileOfferState::Accepted) => Some("accepted"),
        Ok(pb::FileOfferState::Declined) => Some("declined"),
        Ok(pb::FileOfferState::None) | Err(_) => None,
    }
}

/// Adds a message's `"file"`, `"transcript"` and `"offer"` to its JSON object, when it has them.
pub fn message_fields(m: &pb::Message, v: &mut Value) {
    if let Some(f) = &m.file {
        v["file"] = file(f);
    }
    if !m.transcript.is_empty() {
        v["transcript"] = m.transcript.clone().into();
    }
    if let Some(state) = offer_state(m.offer) {
        v["offer"] = state.into();
    }
}

/// A transcript: `{"text","engine"}`, with `"conversation_id"` and `"seq"` for a message's.
pub fn transcript(t: &pb::Transcript) -> Value {
    let mut v = json!({ "text": t.text, "engine": t.engine });
    if t.conversation_id != 0 {
        v["conversation_id"] = t.conversation_id.to_string().into();
        v["seq"] = t.seq.to_string().into();
    }
    v
}

/// A file offer's answer: `{"conversation_id","seq","user_id","state"}`.
pub fn file_offer(o: &pb::FileOffer) -> Value {
    json!({
        "conversation_id": o.conversation_id.to_string(),
        "seq": o.seq.to_string(),
        "user_id": o.user_id.to_string(),
        "state": offer_state(o.state).unwrap_or("none"),
    })
}

/// One item of `download_many`'s answer: `{"file_id","offset","size","data","truncated"}`
/// (`data` in base64) or `{"file_id","error":{"code","message"}}`.
pub fn file_data(d: &pb::FileData) -> Value {
    match &d.error {
        Some(e) => {
            let code = crate::ErrorCode::try_from(e.code).unwrap_or(crate::ErrorCode::Unspecified);
            let name = code.as_str_name();
            let name = name.strip_prefix("ERROR_CODE_").unwrap_or(name);
            json!({
                "file_id": d.file_id.to_string(),
                "error": { "code": name, "message": e.message },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_fields_and_optional_ones() {
        let mut f = pb::FileInfo {
            file_id: 7,
            name: "a.png".into(),
            size: 3,
            mime: "image/png".into(),
            sha256: vec![0xab, 0x01].into(),
            ..Default::default()
        };
        let v = file(&f);
        assert_eq!(v["file_id"], "7");
        assert_eq!(v["sha256"], "ab01");
        assert!(v.get("width").is_none() && v.get("duration_ms").is_none());
        f.width = 4;
        f.height = 2;
        assert_eq!(file(&f)["height"], 2);
        let mut m = pb::Message {
            file: Some(f),
            offer: pb::FileOfferState::Declined as i32,
            ..Default::default()
        };
        let mut v = json!({});
        message_fields(&m, &mut v);
        assert_eq!(v["file"]["width"], 4);
        assert_eq!(v["offer"], "declined");
        assert!(v.get("transcript").is_none());
        m.transcript = "go forward".into();
        message_fields(&m, &mut v);
        assert_eq!(v["transcript"], "go forward");
    }
}
