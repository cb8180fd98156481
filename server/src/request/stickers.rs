//! AddSticker, RemoveSticker, ListStickers: a user's saved images, sent as STICKER
//! messages.

use feige_protocol::{pb, ErrorCode, ResponseResult};
use feige_storage::blobs;

use super::caller::{Caller, Reply};
use crate::convert;
use crate::error::RequestError;
use crate::files::readable_file;

/// Serves `AddSticker`: an image the caller may read becomes one of their stickers (again:
/// it moves first); answers the list.
pub(crate) async fn add(me: Caller, r: pb::AddSticker) -> Reply {
    let file = readable_file(&me.shared, me.user, r.file_id).await?;
    if file.info.width == 0 {
        return Err(RequestError::invalid(
            "a sticker must be an image (PNG, JPEG, GIF or WebP)",
        ));
    }
    let (user, id, cap) = (me.user, r.file_id, me.shared.config.max_stickers);
    let now = feige_storage::now_ms();
    me.shared
        .writer
        .call(move |c| blobs::add_sticker(c, user, id, cap, now))
        .await?;
    Ok(ResponseResult::StickerAdd(sticker_list(&me).await?))
}

/// Serves `RemoveSticker`; answers the list.
pub(crate) async fn remove(me: Caller, r: pb::RemoveSticker) -> Reply {
    let (user, id) = (me.user, r.file_id);
    if !me
        .shared
        .writer
        .call(move |c| blobs::remove_sticker(c, user, id))
        .await?
    {
        return Err(RequestError::new(
            ErrorCode::NotFound,
            "this file is not one of your stickers",
        ));
    }
    Ok(ResponseResult::StickerRemove(sticker_list(&me).await?))
}

/// Serves `ListStickers`: the caller's stickers, newest first.
pub(crate) async fn list(me: Caller) -> Reply {
    Ok(ResponseResult::Stickers(sticker_list(&me).await?))
}

/// The caller's stickers, newest first: the answer of all three requests, each in its own
/// response field.
async fn sticker_list(me: &Caller) -> Result<pb::FileList, RequestError> {
    let user = me.user;
    let files = me
        .shared
        .store
        .read(move |c| blobs::stickers(c, user))
        .await?;
    Ok(pb::FileList {
        files: files.iter().map(convert::file_info).collect(),
    })
}
