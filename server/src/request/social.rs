//! Friends (requests, answers, list, remark, delete, block), presence and the conversation
//! list with read positions. Each request is served on its own task: reads from the reader
//! pool, writes through the storage writer (friendships and blocks with
//! [`feige_storage::Writer::call_graph`], so 1:1 messages queued after a change are judged by
//! it). Pushes to the other user, and to the caller's other connections, go out after the
//! commit.

use feige_protocol::{pb, ErrorCode, PushKind, ResponseResult};
use feige_storage::social::{self, RequestOutcome};
use feige_storage::UserId;

use super::caller::{Caller, Reply};
use crate::convert;
use crate::error::RequestError;
use crate::validate::{self, REMARK, REQUEST_NOTE};

/// Largest page of `ListConversations` (a limit of 0 still means all).
const MAX_CONVERSATION_PAGE: u32 = 500;

fn ensure_other(me: &Caller, other: UserId, what: &str) -> Result<(), RequestError> {
    if other == me.user {
        return Err(RequestError::invalid(format!("cannot {what} yourself")));
    }
    Ok(())
}

/// Serves `SendFriendRequest`; the recipient gets a `friend_request` push. When the recipient
/// had already asked the caller, that request is accepted instead and they get a
/// `friend_response` push.
pub(crate) async fn friend_request(me: Caller, r: pb::SendFriendRequest) -> Reply {
    let to = validate::required_id("user_id", r.to_user)?;
    ensure_other(&me, to, "send a friend request to")?;
    let message = validate::text(&REQUEST_NOTE, &r.message)?;
    let from = me.user;
    let cooldown = me.shared.config.friend_request_cooldown_ms;
    let outcome = me
        .shared
        .writer
        .call_graph(move |c| social::send_request(c, from, to, &message, cooldown))
        .await?;
    match outcome {
        RequestOutcome::Sent(req) => {
            // The recipient, and the caller's other devices (`from` is then the user).
            let push = PushKind::FriendRequest(convert::friend_request(&req));
            me.push(to, push.clone());
            me.push(from, push);
            Ok(ResponseResult::FriendRequest(pb::FriendRequestSent {
                request_id: req.id,
                became_friends: false,
                friend: None,
            }))
        }
        RequestOutcome::Accepted { request, friend } => {
            notify_accepted(&me, &request, &friend).await?;
            Ok(ResponseResult::FriendRequest(pb::FriendRequestSent {
                request_id: request.id,
                became_friends: true,
                friend: Some(convert::friend(&friend, me.online(to))),
            }))
        }
    }
}

/// Pushes to the requester of an accepted request that the caller is now their friend
/// (`friend_response` and `friend_added`), and to the caller's other connections that the
/// request was answered and the new friend (`friend_request_answered` and `friend_added`,
/// `mine` = the requester as the caller's friend).
async fn notify_accepted(
    me: &Caller,
    request: &social::FriendRequestRecord,
    mine: &social::FriendRecord,
) -> Result<(), RequestError> {
    let (requester, user) = (request.from.id, me.user);
    let theirs = me
        .shared
        .store
        .read(move |c| social::friend(c, requester, user))
        .await?;
    let theirs = theirs.map(|f| convert::friend(&f, me.online(user)));
    me.push(
        requester,
        PushKind::FriendResponse(pb::FriendResponse {
            request_id: request.id,
            accepted: true,
            user: Some(convert::public(&request.to)),
            friend: theirs.clone(),
        }),
    );
    if let Some(f) = theirs {
        me.push(requester, PushKind::FriendAdded(f));
    }
    let mine = convert::friend(mine, me.online(requester));
    me.push(
        user,
        PushKind::FriendRequestAnswered(pb::FriendResponse {
            request_id: request.id,
            accepted: true,
            user: Some(convert::public(&request.from)),
            friend: Some(mine.clone()),
        }),
    );
    me.push(user, PushKind::FriendAdded(mine));
    Ok(())
}

/// Serves `ListFriendRequests`: pending requests received and sent.
pub(crate) async fn friend_requests(me: Caller) -> Reply {
    let user = me.user;
    let (incoming, outgoing) = me
        .shared
        .store
        .read(move |c| social::friend_requests(c, user))
        .await?;
    Ok(ResponseResult::FriendRequests(pb::FriendRequestList {
        incoming: incoming.iter().map(convert::friend_request).collect(),
        outgoing: outgoing.iter().map(convert::friend_request).collect(),
    }))
}

/// Serves `RespondFriendRequest`; the requester gets a `friend_response` push, the caller's
/// other connections `friend_request_answered`.
pub(crate) async fn friend_respond(me: Caller, r: pb::RespondFriendRequest) -> Reply {
    let id = validate::required_id("request_id", r.request_id)?;
    let (user, accept) = (me.user, r.accept);
    let done = me
        .shared
        .writer
        .call_graph(move |c| social::respond_request(c, user, id, accept))
        .await?;
    let requester = done.request.from.id;
    if let Some(mine) = &done.friend {
        notify_accepted(&me, &done.request, mine).await?;
    } else {
        me.push(
            requester,
            PushKind::FriendResponse(pb::FriendResponse {
                request_id: id,
                accepted: false,
                user: Some(convert::public(&done.request.to)),
                friend: None,
            }),
        );
        me.push(
            me.user,
            PushKind::FriendRequestAnswered(pb::FriendResponse {
                request_id: id,
                accepted: false,
                user: Some(convert::public(&done.request.from)),
                friend: None,
            }),
        );
    }
    Ok(ResponseResult::FriendRespond(pb::FriendResponse {
        request_id: id,
        accepted: done.accepted,
        user: Some(convert::public(&done.request.from)),
        friend: done
            .friend
            .as_ref()
            .map(|f| convert::friend(f, me.online(requester))),
    }))
}

/// Serves `ListFriends`: each friend with remark and online state.
pub(crate) async fn friends(me: Caller) -> Reply {
    let user = me.user;
    let list = me
        .shared
        .store
        .read(move |c| social::friends(c, user))
        .await?;
    Ok(ResponseResult::Friends(pb::FriendList {
        friends: list
            .iter()
            .map(|f| convert::friend(f, me.online(f.user.id)))
            .collect(),
    }))
}

/// Serves `SetRemark`; the caller's other connections get `friend_updated`.
pub(crate) async fn set_remark(me: Caller, r: pb::SetRemark) -> Reply {
    let other = validate::required_id("user_id", r.user_id)?;
    let remark = validate::text(&REMARK, &r.remark)?;
    let user = me.user;
    let f = me
        .shared
        .writer
        .call(move |c| social::set_remark(c, user, other, &remark))
        .await?;
    let f = convert::friend(&f, me.online(other));
    me.push(me.user, PushKind::FriendUpdated(f.clone()));
    Ok(ResponseResult::SetRemark(f))
}

/// Tells both sides (except the calling connection) that a friendship ended.
fn notify_removed(me: &Caller, other: UserId) {
    me.push(
        other,
        PushKind::FriendRemoved(pb::FriendRemoved { user_id: me.user }),
    );
    me.push(
        me.user,
        PushKind::FriendRemoved(pb::FriendRemoved { user_id: other }),
    );
}

/// Serves `DeleteFriend`: both sides lose the friendship; the other gets `friend_removed`.
pub(crate) async fn delete_friend(me: Caller, r: pb::DeleteFriend) -> Reply {
    let other = validate::required_id("user_id", r.user_id)?;
    let user = me.user;
    me.shared
        .writer
        .call_graph(move |c| social::delete_friend(c, user, other))
        .await?;
    notify_removed(&me, other);
    Ok(ResponseResult::DeleteFriend(pb::Done {}))
}

/// Serves `Block`: ends a friendship (with `friend_removed` pushes) and pending requests; the
/// caller's other connections get `block_changed`.
pub(crate) async fn block(me: Caller, r: pb::Block) -> Reply {
    let other = validate::required_id("user_id", r.user_id)?;
    ensure_other(&me, other, "block")?;
    let user = me.user;
    let (blocked, were_friends) = me
        .shared
        .writer
        .call_graph(move |c| social::block(c, user, other))
        .await?;
    if were_friends {
        notify_removed(&me, other);
    }
    me.push(
        me.user,
        PushKind::BlockChanged(pb::BlockChanged {
            user: Some(convert::public(&blocked)),
            blocked: true,
        }),
    );
    Ok(ResponseResult::Block(pb::Done {}))
}

/// Serves `Unblock`; the caller's other connections get `block_changed`.
pub(crate) async fn unblock(me: Caller, r: pb::Unblock) -> Reply {
    let other = validate::required_id("user_id", r.user_id)?;
    let user = me.user;
    let unblocked = me
        .shared
        .writer
        .call_graph(move |c| social::unblock(c, user, other))
        .await?;
    me.push(
        me.user,
        PushKind::BlockChanged(pb::BlockChanged {
            user: Some(convert::public(&unblocked)),
            blocked: false,
        }),
    );
    Ok(ResponseResult::Unblock(pb::Done {}))
}

/// Serves `ListBlocked`.
pub(crate) async fn blocked(me: Caller) -> Reply {
    let user = me.user;
    let list = me
        .shared
        .store
        .read(move |c| social::blocked(c, user))
        .await?;
    Ok(ResponseResult::Blocked(pb::UserList {
        users: list.iter().map(convert::public).collect(),
        has_more: false,
    }))
}

/// Serves `GetPresence`: for friends and oneself only.
pub(crate) async fn presence(me: Caller, r: pb::GetPresence) -> Reply {
    let other = validate::required_id("user_id", r.user_id)?;
    if other != me.user {
        let user = me.user;
        let friends = me
            .shared
            .store
            .read(move |c| social::is_friend(c, user, other))
            .await?;
        if !friends {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                "presence is visible to friends only",
            ));
        }
    }
    Ok(ResponseResult::Presence(pb::Presence {
        user_id: other,
        online: me.online(other),
    }))
}

/// Serves `ListConversations`: one page (or, without a limit, all) of the caller's
/// conversations, most recently active first.
pub(crate) async fn conversations(me: Caller, r: pb::ListConversations) -> Reply {
    let before = match (r.before_active_ms, r.before_id) {
        (0, 0) => None,
        (0, _) => {
            return Err(RequestError::invalid(
                "before_id needs before_active_ms (the cursor is both of the last entry)",
            ))
        }
        (ms, id) => Some((ms, id)),
    };
    let page = social::ConversationPage {
        limit: r.limit.min(MAX_CONVERSATION_PAGE) as usize,
        before,
    };
    let user = me.user;
    let (list, has_more) = me.shared.store.conversations(user, page).await?;
    Ok(ResponseResult::Conversations(pb::ConversationList {
        conversations: list.iter().map(convert::conversation).collect(),
        has_more,
    }))
}
