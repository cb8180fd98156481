//! AnswerFileOffer: a recipient accepts or declines a file offer (a FILE or VIDEO message
//! sent with `offer`), and the conversation hears the answer.

use feige_protocol::{pb, ErrorCode, PushKind, ResponseResult};
use feige_storage::blobs;

use super::caller::{Caller, Reply};
use crate::error::RequestError;
use crate::validate;

/// Serves `AnswerFileOffer`: records the caller's answer to an offer sent to them, and
/// pushes it (`file_offer_answered`) to the conversation's members, the sender included.
pub(crate) async fn answer(me: Caller, r: pb::AnswerFileOffer) -> Reply {
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
