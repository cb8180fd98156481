//! Friends (requests, answers, list, remark, delete, block), presence and the conversation
//! list with read positions. Each request is served on its own task: reads from the reader
//! pool, writes through the storage writer (friendships and blocks with
//! [`feige_storage::Writer::call_graph`], so 1:1 messages queued after a change are judged by
//! it). Pushes to the other user, and to the caller's other connections, go out after the
//! commit.

use std::sync::Arc;

use feige_protocol::{frame, pb, Envelope, ErrorCode, PushKind, RequestKind, ResponseResult};
use feige_storage::social::{self, RequestOutcome};
use feige_storage::UserId;

use crate::convert;
use crate::error::RequestError;
use crate::handler::{Handler, Login};
use crate::request::profile;
use crate::validate::{self, REMARK, REQUEST_NOTE};
use crate::Shared;

/// Largest page of `ListConversations` (a limit of 0 still means all).
const MAX_CONVERSATION_PAGE: u32 = 500;

/// Who is asking, for requests served off the connection task.
#[derive(Clone)]
pub(crate) struct Caller {
    pub shared: Arc<Shared>,
    pub user: UserId,
    pub conn_id: u64,
    pub token_hash: Vec<u8>,
}

impl Caller {
    /// Pushes to every connection of `user` except the caller's own.
    pub(crate) fn push(&self, user: UserId, kind: PushKind) {
        let push = frame::encode_to_bytes(&Envelope::push(kind));
        self.shared.sessions.for_each(user, |p| {
            if p.conn_id != self.conn_id {
                p.deliver(&push);
            }
        });
    }

    /// Pushes `kind` to every connection of each of `users` (none of which is the caller).
    pub(crate) fn push_to(&self, users: &[UserId], kind: PushKind) {
        let push = frame::encode_to_bytes(&Envelope::push(kind));
        for &user in users {
            self.shared.sessions.for_each(user, |p| p.deliver(&push));
        }
    }

    fn online(&self, user: UserId) -> bool {
        self.shared.sessions.is_online(user)
    }
}

impl Handler {
    /// Dispatches the profile, friend, presence and conversation-list requests.
    pub(crate) async fn social(&mut self, rid: u64, login: Login, kind: RequestKind) {
        let me = Caller {
            shared: self.shared.clone(),
            user: login.user,
            conn_id: self.conn_id,
            token_hash: login.token_hash,
        };
        match kind {
            RequestKind::UpdateProfile(r) => self.spawn_reply(rid, profile::update(me, r)).await,
            RequestKind::ChangePassword(r) => {
                self.spawn_reply(rid, profile::change_password(me, r)).await;
            }
            RequestKind::GetUser(r) => self.spawn_reply(rid, profile::get_user(me, r)).await,
            RequestKind::SearchUsers(r) => self.spawn_reply(rid, profile::search(me, r)).await,
            RequestKind::FriendRequest(r) => self.spawn_reply(rid, friend_request(me, r)).await,
            RequestKind::FriendRequests(_) => self.spawn_reply(rid, friend_requests(me)).await,
            RequestKind::FriendRespond(r) => self.spawn_reply(rid, friend_respond(me, r)).await,
            RequestKind::Friends(_) => self.spawn_reply(rid, friends(me)).await,
            RequestKind::SetRemark(r) => self.spawn_reply(rid, set_remark(me, r)).await,
            RequestKind::DeleteFriend(r) => self.spawn_reply(rid, delete_friend(me, r)).await,
            RequestKind::Block(r) => self.spawn_reply(rid, block(me, r)).await,
            RequestKind::Unblock(r) => self.spawn_reply(rid, unblock(me, r)).await,
            RequestKind::Blocked(_) => self.spawn_reply(rid, blocked(me)).await,
            RequestKind::Presence(r) => self.spawn_reply(rid, presence(me, r)).await,
            RequestKind::Conversations(r) => self.spawn_reply(rid, conversations(me, r)).await,
            RequestKind::MarkRead(r) => self.spawn_reply(rid, mark_read(me, r)).await,
            RequestKind::Sessions(_) => {
                self.spawn_reply(rid, super::account::list_sessions(me))
                    .await;
            }
            RequestKind::RevokeSession(r) => {
                let result = self.revoke_session(&me, r).await;
                self.respond(rid, result);
            }
            _ => self.respond(
                rid,
                Err(RequestError::new(
                    ErrorCode::UnknownRequest,
                    "unknown request kind",
                )),
            ),
        }
    }
}

fn user_arg(id: u64) -> Result<UserId, RequestError> {
    if id == 0 {
        return Err(RequestError::invalid("user_id is required"));
    }
    validate::id("user_id", id)
}

fn ensure_other(me: &Caller, other: UserId, what: &str) -> Result<(), RequestError> {
    if other == me.user {
        return Err(RequestError::invalid(format!("cannot {what} yourself")));
    }
    Ok(())
}

/// Serves `SendFriendRequest`; the recipient gets a `friend_request` push. When the recipient
/// had already asked the caller, that request is accepted instead and they get a
/// `friend_response` push.
async fn friend_request(
    me: Caller,
    r: pb::SendFriendRequest,
) -> Result<ResponseResult, RequestError> {
    let to = user_arg(r.to_user)?;
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
async fn friend_requests(me: Caller) -> Result<ResponseResult, RequestError> {
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
async fn friend_respond(
    me: Caller,
    r: pb::RespondFriendRequest,
) -> Result<ResponseResult, RequestError> {
    if r.request_id == 0 {
        return Err(RequestError::invalid("request_id is required"));
    }
    let id = validate::id("request_id", r.request_id)?;
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
async fn friends(me: Caller) -> Result<ResponseResult, RequestError> {
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
async fn set_remark(me: Caller, r: pb::SetRemark) -> Result<ResponseResult, RequestError> {
    let other = user_arg(r.user_id)?;
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
async fn delete_friend(me: Caller, r: pb::DeleteFriend) -> Result<ResponseResult, RequestError> {
    let other = user_arg(r.user_id)?;
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
async fn block(me: Caller, r: pb::Block) -> Result<ResponseResult, RequestError> {
    let other = user_arg(r.user_id)?;
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
async fn unblock(me: Caller, r: pb::Unblock) -> Result<ResponseResult, RequestError> {
    let other = user_arg(r.user_id)?;
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
async fn blocked(me: Caller) -> Result<ResponseResult, RequestError> {
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
async fn presence(me: Caller, r: pb::GetPresence) -> Result<ResponseResult, RequestError> {
    let other = user_arg(r.user_id)?;
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
async fn conversations(
    me: Caller,
    r: pb::ListConversations,
) -> Result<ResponseResult, RequestError> {
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

/// Serves `MarkRead`; the user's other connections get a `read_position` push.
async fn mark_read(me: Caller, r: pb::MarkRead) -> Result<ResponseResult, RequestError> {
    if r.conversation_id == 0 {
        return Err(RequestError::invalid("conversation_id is required"));
    }
    validate::id("conversation_id", r.conversation_id)?;
    let pos = me
        .shared
        .writer
        .mark_read(me.user, r.conversation_id, r.seq)
        .await?;
    let pos = convert::read_position(&pos);
    me.push(me.user, PushKind::ReadPosition(pos));
    Ok(ResponseResult::MarkRead(pos))
}
