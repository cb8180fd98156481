//! AddSticker, RemoveSticker, ListStickers (a user's saved images, sent as STICKER
//! messages), and AnswerFileOffer (a recipient accepts or declines a file offer).

use feige_protocol::{pb, ErrorCode, PushKind, ResponseResult};
use feige_storage::blobs;

use super::caller::{Caller, Reply};
use crate::convert;
use crate::error::RequestError;
use crate::files::readable_file;
use crate::validate;

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
    list(me).await
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
    list(me).await
}

/// Serves `ListStickers`: the caller's stickers, newest first.
pub(crate) async fn list(me: Caller) -> Reply {
    let user = me.user;
    let files = me
        .shared
        .store
        .read(move |c| blobs::stickers(c, user))
        .await?;
    Ok(ResponseResult::Stickers(pb::FileList {
        files: files.iter().map(convert::file_info).collect(),
    }))
}

/// Serves `AnswerFileOffer`: records the caller's answer to an offer sent to them, and
/// pushes it (`file_offer_answered`) to the conversation's members, the sender included.
pub(crate) async fn answer_offer(me: Caller, r: pb::AnswerFileOffer) -> Reply {
    let conversation = validate::id("conversation_id", r.conversation_id)?;
    let (user, seq) = (me.user, r.seq);
    let state = if r.accept {
        pb::FileOfferState::Accepted
    } else {
        pb::FileOfferState::Declined
    };
    let code = i64::from(state as i32);
    let now = feige_storage::now_ms();
    let members = me
        .shared
        .writer
        .call(move |c| blobs::answer_offer(c, user, conversation, seq, code, now))
        .await
        .map_err(|e| match e {
            feige_storage::StorageError::UnknownMessage => RequestError::new(
                ErrorCode::NotFound,
                "no file offer at this seq of the conversation",
            ),
            feige_storage::StorageError::Forbidden => RequestError::new(
                ErrorCode::Forbidden,
                "only a recipient of the offer (a member other than its sender) may answer it",
            ),
            e => e.into(),
        })?;
    let offer = pb::FileOffer {
        conversation_id: conversation,
        seq,
        user_id: user,
        state: state as i32,
    };
    let others: Vec<_> = members.into_iter().filter(|&m| m != user).collect();
    me.push_to(&others, PushKind::FileOfferAnswered(offer));
    me.push(user, PushKind::FileOfferAnswered(offer));
    Ok(ResponseResult::FileOfferAnswer(offer))
}
