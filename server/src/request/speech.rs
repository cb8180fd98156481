//! Transcribe: a voice message or an audio file the caller may read, turned into text on the
//! speech workers (`crate::speech`); by message, the text is stored once and pushed once.

use feige_protocol::{pb, ErrorCode, PushKind, ResponseResult};
use feige_storage::transcript::{TranscriptStored, VOICE};

use super::caller::{Caller, Reply};
use crate::error::RequestError;
use crate::files::ReadableFile;
use crate::speech::{AudioFile, Transcript};
use crate::validate;

/// Longest language tag accepted (BCP 47's practical bound).
const MAX_LANGUAGE: usize = 35;

/// Outbox room for a Transcribe reply: a transcript is cut to `max_text_len` bytes.
pub(crate) fn reply_room(max_text_len: usize) -> usize {
    max_text_len + 1024
}

/// Serves `Transcribe`: by message (`conversation_id` and `seq`) or by file (`file_id`).
pub(crate) async fn transcribe(me: Caller, r: pb::Transcribe) -> Reply {
    let language = language(&r.language)?;
    let by_message = r.conversation_id != 0 || r.seq != 0;
    match (by_message, r.file_id != 0) {
        (true, true) => Err(RequestError::invalid(
            "name a message (conversation_id and seq) or a file (file_id), not both",
        )),
        (false, false) => Err(RequestError::invalid(
            "name a message (conversation_id and seq) or a file (file_id)",
        )),
        (true, false) => message(me, r.conversation_id, r.seq, language).await,
        (false, true) => file(me, r.file_id, language).await,
    }
}

/// By file: the text is answered, nothing is stored.
async fn file(me: Caller, file_id: u64, language: String) -> Reply {
    let file_id = validate::required_id("file_id", file_id)?;
    let file = crate::files::readable_file(&me.shared, me.user, file_id).await?;
    let made = run(&me, &language, file).await?;
    Ok(answer(made.text, made.engine, 0, 0))
}

/// By message: a stored transcript is answered as it is; otherwise the engine's text is
/// stored, and pushed to the readers only by the request that stored it.
async fn message(me: Caller, conversation: u64, seq: u64, language: String) -> Reply {
    let conversation = validate::required_id("conversation_id", conversation)?;
    let seq = validate::required_id("seq", seq)?;
    let m = me
        .shared
        .store
        .message_for(me.user, conversation, seq)
        .await?
        .ok_or_else(|| RequestError::new(ErrorCode::NotFound, "no such message"))?;
    if m.kind != VOICE {
        return Err(RequestError::invalid("the message is not a voice message"));
    }
    let Some(attached) = m.file else {
        return Err(RequestError::invalid("the voice message carries no file"));
    };
    if let Some(text) = m.transcript {
        return Ok(answer(text, "", conversation, seq));
    }
    let file = crate::files::readable_file(&me.shared, me.user, attached.file.id).await?;
    let made = run(&me, &language, file).await?;
    let stored = me
        .shared
        .writer
        .store_transcript(conversation, seq, m.id, made.text.clone())
        .await
        .map_err(|e| match e {
            feige_storage::StorageError::UnknownMessage => {
                RequestError::new(ErrorCode::NotFound, "the message was recalled")
            }
            e => e.into(),
        })?;
    match stored {
        TranscriptStored::Stored { readers } => {
            let push = PushKind::Transcribed(pb::Transcript {
                text: made.text.clone(),
                engine: made.engine.to_owned(),
                conversation_id: conversation,
                seq,
            });
            let others: Vec<_> = readers.iter().copied().filter(|&u| u != me.user).collect();
            me.push_to(&others, push.clone());
            me.push(me.user, push);
            Ok(answer(made.text, made.engine, conversation, seq))
        }
        TranscriptStored::Existing(text) => Ok(answer(text, "", conversation, seq)),
    }
}

/// Runs the engine of `language` on `file`, the text cut to `max_text_len` bytes.
async fn run(me: &Caller, language: &str, file: ReadableFile) -> Result<Transcript, RequestError> {
    let audio = AudioFile {
        path: file.path,
        mime: file.info.mime,
        name: file.info.name,
        size: file.info.size,
    };
    let mut made = me.shared.speech.transcribe(language, audio).await?;
    let max = me.shared.config.max_text_len;
    if made.text.len() > max {
        let mut end = max;
        while !made.text.is_char_boundary(end) {
            end -= 1;
        }
        made.text.truncate(end);
    }
    Ok(made)
}

fn answer(text: String, engine: &str, conversation_id: u64, seq: u64) -> ResponseResult {
    ResponseResult::Transcribe(pb::Transcript {
        text,
        engine: engine.to_owned(),
        conversation_id,
        seq,
    })
}

/// A language tag: letters, digits, `-` and `_`, at most [`MAX_LANGUAGE`] bytes; "" is the
/// default engine's.
fn language(tag: &str) -> Result<String, RequestError> {
    let tag = tag.trim();
    if tag.len() > MAX_LANGUAGE
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(RequestError::invalid(
            "language: a tag such as \"en\" or \"zh-CN\" (letters, digits, '-'; at most 35)",
        ));
    }
    Ok(tag.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn language_tags_are_checked() {
        assert_eq!(super::language(" zh-CN ").unwrap(), "zh-CN");
        assert_eq!(super::language("").unwrap(), "");
        assert!(super::language("en;rm -rf").is_err());
        assert!(super::language(&"a".repeat(36)).is_err());
    }
}
