//! Files besides the transfers themselves (`upload`, `download`): metadata, batch downloads,
//! the avatar, file messages, speech-to-text, stickers and file offers.

use std::path::Path;

use feige_protocol::{pb, RequestKind, ResponseResult};
use tokio_util::sync::CancellationToken;

use super::Client;
use crate::link::unexpected;
use crate::transfer::Progress;
use crate::ClientError;

/// What a [`Client::transcribe`] turns into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscribeTarget {
    /// A voice message: the text is stored with it and pushed to the conversation's members.
    Message {
        /// Its conversation.
        conversation_id: u64,
        /// Its seq there.
        seq: u64,
    },
    /// An uploaded audio file the caller may read.
    File(u64),
}

/// Where a message goes: a user (1:1) or a conversation (a group's id is its conversation's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    /// 1:1 with this user.
    User(u64),
    /// This conversation.
    Conversation(u64),
}

impl Client {
    /// The metadata of files the caller may read (at most 100 ids), in the server's order.
    ///
    /// # Errors
    /// `NOT_FOUND`, `FORBIDDEN`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn file_info(&self, file_ids: &[u64]) -> Result<Vec<pb::FileInfo>, ClientError> {
        let req = pb::GetFiles {
            file_ids: file_ids.to_vec(),
        };
        match self.call(RequestKind::FileInfo(req)).await? {
            ResponseResult::FileInfo(l) => Ok(l.files),
            other => Err(unexpected("GetFiles", &other)),
        }
    }

    /// Several small downloads in one request (thumbnails, avatars): at most 64 items,
    /// answered in order within one 1 MiB page, each with its data or its own `error`; an
    /// item that does not fit comes back `truncated`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (too many items), or a connection error.
    pub async fn download_many(
        &self,
        items: Vec<pb::Download>,
    ) -> Result<Vec<pb::FileData>, ClientError> {
        let req = pb::DownloadMany { items };
        match self.call(RequestKind::DownloadMany(req)).await? {
            ResponseResult::DownloadMany(l) => Ok(l.items),
            other => Err(unexpected("DownloadMany", &other)),
        }
    }

    /// Uploads the image at `path` and makes it the user's avatar (the profile's `avatar`
    /// is the file id in decimal); returns the new profile.
    ///
    /// # Errors
    /// As [`Client::upload_file`] and [`Client::update_profile`].
    pub async fn set_avatar(
        &self,
        path: impl AsRef<Path>,
        progress: impl FnMut(Progress) + Send,
        cancel: &CancellationToken,
    ) -> Result<pb::Profile, ClientError> {
        let up = self.upload_file(path, None, None, progress, cancel).await?;
        self.update_profile(pb::UpdateProfile {
            avatar: Some(up.file.file_id.to_string()),
            ..Default::default()
        })
        .await
    }

    /// Sends a message carrying an uploaded file: `kind` is IMAGE, FILE, VOICE, VIDEO or
    /// STICKER (then `file_id` is one of the user's stickers), `text` an optional caption,
    /// `offer` (FILE and VIDEO) asks the recipients to accept before they may download it.
    /// As [`Client::send`] otherwise.
    ///
    /// # Errors
    /// As [`Client::send`].
    pub async fn send_file(
        &self,
        to: Recipient,
        kind: pb::MessageKind,
        file_id: u64,
        text: &str,
        offer: bool,
    ) -> Result<pb::SendOk, ClientError> {
        let (to_user, conversation_id) = match to {
            Recipient::User(u) => (u, 0),
            Recipient::Conversation(c) => (0, c),
        };
        self.send(pb::SendMessage {
            to_user,
            conversation_id,
            kind: kind as i32,
            text: text.to_owned(),
            file_id,
            offer,
            ..Default::default()
        })
        .await
    }

    /// Turns a voice message or an audio file into text (`language` "" = the server's
    /// default engine, "en", "zh"). By message, the text is stored with it and pushed once to
    /// the conversation's members ([`crate::Event::Transcribed`]).
    ///
    /// # Errors
    /// `SPEECH_UNAVAILABLE`, `TRANSCRIPTION_FAILED`, `BUSY`, `NOT_FOUND`, `FORBIDDEN`, or a
    /// connection error.
    pub async fn transcribe(
        &self,
        target: TranscribeTarget,
        language: &str,
    ) -> Result<pb::Transcript, ClientError> {
        let (conversation_id, seq, file_id) = match target {
            TranscribeTarget::Message {
                conversation_id,
                seq,
            } => (conversation_id, seq, 0),
            TranscribeTarget::File(f) => (0, 0, f),
        };
        let req = pb::Transcribe {
            conversation_id,
            seq,
            file_id,
            language: language.to_owned(),
        };
        match self.call(RequestKind::Transcribe(req)).await? {
            ResponseResult::Transcribe(t) => Ok(t),
            other => Err(unexpected("Transcribe", &other)),
        }
    }

    /// Saves an image the caller may read as one of their stickers; returns the stickers,
    /// newest first.
    ///
    /// # Errors
    /// `NOT_FOUND`, `FORBIDDEN`, `INVALID_ARGUMENT` (not an image), or a connection error.
    pub async fn add_sticker(&self, file_id: u64) -> Result<Vec<pb::FileInfo>, ClientError> {
        let req = pb::AddSticker { file_id };
        sticker_list("AddSticker", self.call(RequestKind::StickerAdd(req)).await?)
    }

    /// Removes one of the caller's stickers; returns the rest, newest first.
    ///
    /// # Errors
    /// `NOT_FOUND`, or a connection error.
    pub async fn remove_sticker(&self, file_id: u64) -> Result<Vec<pb::FileInfo>, ClientError> {
        let req = pb::RemoveSticker { file_id };
        sticker_list(
            "RemoveSticker",
            self.call(RequestKind::StickerRemove(req)).await?,
        )
    }

    /// The caller's stickers, newest first.
    ///
    /// # Errors
    /// A connection error.
    pub async fn stickers(&self) -> Result<Vec<pb::FileInfo>, ClientError> {
        let answer = self
            .call(RequestKind::Stickers(pb::ListStickers {}))
            .await?;
        sticker_list("ListStickers", answer)
    }

    /// Accepts or declines a file offer addressed to the caller (message `seq` of
    /// `conversation_id`); the sender sees the answer ([`crate::Event::FileOfferAnswered`]).
    ///
    /// # Errors
    /// `NOT_FOUND` (no such offer to the caller), or a connection error.
    pub async fn answer_file_offer(
        &self,
        conversation_id: u64,
        seq: u64,
        accept: bool,
    ) -> Result<pb::FileOffer, ClientError> {
        let req = pb::AnswerFileOffer {
            conversation_id,
            seq,
            accept,
        };
        match self.call(RequestKind::FileOfferAnswer(req)).await? {
            ResponseResult::FileOfferAnswer(o) => Ok(o),
            other => Err(unexpected("AnswerFileOffer", &other)),
        }
    }
}

/// The sticker list of an answer to a sticker request. Each request has its own answer field
/// in the .proto, but all three carry the same list, so any of them is taken (a server that
/// answers every sticker request as `stickers` is understood too).
fn sticker_list(request: &str, answer: ResponseResult) -> Result<Vec<pb::FileInfo>, ClientError> {
    match answer {
        ResponseResult::StickerAdd(l)
        | ResponseResult::StickerRemove(l)
        | ResponseResult::Stickers(l) => Ok(l.files),
        other => Err(unexpected(request, &other)),
    }
}
