//! Who may read a file: the one check every file request (and speech-to-text) goes through.

use std::path::PathBuf;

use feige_protocol::{pb, ErrorCode};
use feige_storage::blobs::{self, Access};
use feige_storage::{FileRecord, FileRef, UserId};

use crate::error::RequestError;
use crate::Shared;

/// A file the caller may read: its blob on disk and its metadata.
#[derive(Debug, Clone)]
pub(crate) struct ReadableFile {
    /// The blob's bytes on disk (read them on the file pool).
    pub path: PathBuf,
    /// Name, size, MIME type, dimensions, duration, thumbnail...
    pub info: FileRecord,
}

/// File `file_id` if `user` may read it (the rules are [`blobs::access`]'s: the uploader;
/// anyone for an avatar; a conversation's members for a file sent there, a group's from
/// their joining on; the user's stickers; an offer once accepted).
///
/// # Errors
/// `NOT_FOUND` (no such file), `FORBIDDEN`, `OFFER_NOT_ACCEPTED`; storage errors.
pub(crate) async fn readable_file(
    shared: &Shared,
    user: UserId,
    file_id: u64,
) -> Result<ReadableFile, RequestError> {
    let access = shared
        .store
        .read(move |c| blobs::access(c, user, file_id))
        .await?;
    match access {
        Access::Readable(info) => Ok(ReadableFile {
            path: shared.files.blob_path(&info.sha256),
            info,
        }),
        Access::OfferNotAccepted => Err(RequestError::new(
            ErrorCode::OfferNotAccepted,
            "this file was offered to you: accept the offer (AnswerFileOffer) before downloading it",
        )),
        Access::Forbidden => Err(RequestError::new(
            ErrorCode::Forbidden,
            "you may not read this file: it is not yours, not an avatar, not one of your \
             stickers, and not sent in a conversation you are a member of",
        )),
        Access::NotFound => Err(RequestError::new(ErrorCode::NotFound, "no such file")),
    }
}

/// The file a message of `kind` sent by `sender` carries, checked: kinds IMAGE, FILE, VOICE,
/// VIDEO and STICKER need one the sender may read (IMAGE and STICKER an image, STICKER one
/// of the sender's stickers); other kinds take none; only FILE and VIDEO may be offers.
///
/// # Errors
/// `INVALID_ARGUMENT` for a file the kind does not take (or lacks); as [`readable_file`].
pub(crate) async fn message_file(
    shared: &Shared,
    sender: UserId,
    kind: i32,
    file_id: u64,
    offer: bool,
) -> Result<Option<Box<FileRef>>, RequestError> {
    use pb::MessageKind as K;
    let kind = K::try_from(kind).unwrap_or(K::Text);
    let takes_file = matches!(kind, K::Image | K::File | K::Voice | K::Video | K::Sticker);
    if offer && !matches!(kind, K::File | K::Video) {
        return Err(RequestError::invalid(
            "only FILE and VIDEO messages can be offers",
        ));
    }
    if !takes_file {
        if file_id != 0 {
            return Err(RequestError::invalid(
                "only IMAGE, FILE, VOICE, VIDEO and STICKER messages carry a file",
            ));
        }
        return Ok(None);
    }
    if file_id == 0 {
        return Err(RequestError::invalid(format!(
            "a {} message needs a file_id (upload the file first)",
            kind.as_str_name()
        )));
    }
    let file = readable_file(shared, sender, file_id).await?;
    if matches!(kind, K::Image | K::Sticker) && file.info.width == 0 {
        return Err(RequestError::invalid(
            "this file is not an image (PNG, JPEG, GIF or WebP)",
        ));
    }
    if kind == K::Sticker
        && !shared
            .store
            .read(move |c| blobs::is_sticker(c, sender, file_id))
            .await?
    {
        return Err(RequestError::invalid(
            "not one of your stickers: add it with AddSticker first",
        ));
    }
    Ok(Some(Box::new(FileRef {
        file: file.info,
        offer,
    })))
}

/// An avatar as given in UpdateProfile or UpdateGroup, checked: "" clears it; a decimal
/// number must be the id of an image `user` may read (it then counts as a use of the file,
/// readable by every logged-in user); other text is kept as an opaque id (older clients).
///
/// # Errors
/// `INVALID_ARGUMENT` (not an image, or not printable ASCII); as [`readable_file`].
pub(crate) async fn avatar(
    shared: &Shared,
    user: UserId,
    raw: &str,
) -> Result<String, RequestError> {
    let a = crate::validate::avatar(raw)?;
    if a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(a);
    }
    let id: u64 = a
        .parse()
        .map_err(|_| RequestError::invalid("avatar: no such file id"))?;
    let file = readable_file(shared, user, id).await?;
    if file.info.width == 0 {
        return Err(RequestError::invalid(
            "an avatar must be an image (PNG, JPEG, GIF or WebP)",
        ));
    }
    Ok(id.to_string())
}
