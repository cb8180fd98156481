//! The request layer: [`dispatch`] maps each request kind to its handler, one file per family
//! (`account`, `message`, `profile`, `social`, `groups`, `upload`, `download`, `stickers`...). Handlers are free functions: the ones that
//! change the connection (Hello, Login, Logout, SendMessage...) run in order on the connection
//! task over its [`Conn`]; the others run on their own task over a [`Caller`] and answer
//! through the outbox. Field checks shared by all of them are in [`crate::validate`].
//! Nothing here depends on the connection task (`crate::handler`).

pub(crate) mod account;
pub(crate) mod caller;
pub(crate) mod closing;
mod codes;
mod contacts;
mod download;
mod groups;
mod message;
mod notifications;
mod offers;
mod profile;
mod receipts;
pub(crate) mod red_packet;
pub(crate) mod rooms;
pub(crate) mod sessions;
mod social;
mod speech;
mod stickers;
mod twofactor;
mod upload;

use std::future::Future;

use feige_protocol::{pb, Body, Envelope, ErrorCode, RequestKind};

use self::caller::{Caller, Conn, Flow, Reply, State, SMALL_REPLY};
use crate::error::RequestError;
use crate::metrics::{Family, Timing};

/// Handles one envelope from the client: refuses what is not a request, and anything but
/// Hello first, then runs the request kind's handler. Each handler checks the rest of what
/// the connection's state allows (a login, or none yet).
pub(crate) async fn dispatch(conn: &mut Conn, env: Envelope) -> Flow {
    let rid = env.request_id;
    let fresh = matches!(conn.state, State::Fresh);
    let Some(Body::Request(pb::Request { kind: Some(kind) })) = env.body else {
        let e = RequestError::new(
            ErrorCode::UnknownRequest,
            "unknown request kind (or not a request)",
        );
        conn.respond(rid, Err(e));
        return if fresh { Flow::Close } else { Flow::Continue };
    };
    if fresh && !matches!(kind, RequestKind::Hello(_)) {
        let e = RequestError::new(ErrorCode::HelloRequired, "the first request must be Hello");
        conn.respond(rid, Err(e));
        return Flow::Close;
    }
    let page = conn.shared.config.reply_page_bytes();
    // Taken by `spawn` for a request served on its own task, which records its latency there.
    let mut t = Some(Timing::start(family(&kind)));
    let flow = match kind {
        // The connection and its sessions: in order, on the connection task.
        RequestKind::Hello(r) => account::hello(conn, rid, r).await,
        RequestKind::Ping(r) => account::ping(conn, rid, r),
        RequestKind::Register(r) if codes::wants_verified(&conn.shared.config, &r) => {
            codes::register(conn, rid, r).await
        }
        RequestKind::Register(r) => account::register(conn, rid, r).await,
        RequestKind::Login(r) => account::login(conn, rid, r).await,
        RequestKind::Resume(r) => account::resume(conn, rid, r).await,
        RequestKind::Logout(_) => account::logout(conn, rid).await,
        RequestKind::RevokeSession(r) => account::revoke_session(conn, rid, r).await,
        RequestKind::Sessions(_) => spawn(conn, &mut t, rid, page, sessions::list_sessions).await,
        // Two-factor login and closing an account.
        RequestKind::LoginTotp(r) => twofactor::login_totp(conn, rid, r).await,
        RequestKind::TotpSetup(_) => spawn(conn, &mut t, rid, SMALL_REPLY, twofactor::setup).await,
        RequestKind::TotpEnable(r) => {
            spawn(conn, &mut t, rid, SMALL_REPLY, |me| {
                twofactor::enable(me, r)
            })
            .await
        }
        RequestKind::TotpDisable(r) => {
            spawn(conn, &mut t, rid, SMALL_REPLY, |me| {
                twofactor::disable(me, r)
            })
            .await
        }
        RequestKind::CloseAccount(r) => closing::close_account(conn, rid, r).await,
        // Messages: SendMessage is queued to the writer, which acks after the commit.
        RequestKind::SendMessage(r) => message::send(conn, rid, r).await,
        RequestKind::Sync(r) => spawn(conn, &mut t, rid, page, |me| message::sync(me, r)).await,
        RequestKind::Ack(r) => {
            spawn(conn, &mut t, rid, SMALL_REPLY, |me| receipts::ack(me, r)).await
        }
        RequestKind::History(r) => {
            spawn(conn, &mut t, rid, page, |me| message::history(me, r)).await
        }
        RequestKind::Search(r) => spawn(conn, &mut t, rid, page, |me| message::search(me, r)).await,
        // One's own profile, and finding other users.
        RequestKind::Whoami(_) => spawn(conn, &mut t, rid, SMALL_REPLY, profile::whoami).await,
        RequestKind::UpdateProfile(r) => {
            spawn(conn, &mut t, rid, page, |me| profile::update(me, r)).await
        }
        RequestKind::ChangePassword(r) => {
            spawn(conn, &mut t, rid, page, |me| {
                profile::change_password(me, r)
            })
            .await
        }
        RequestKind::GetUser(r) => {
            spawn(conn, &mut t, rid, page, |me| profile::get_user(me, r)).await
        }
        RequestKind::SearchUsers(r) => {
            spawn(conn, &mut t, rid, page, |me| profile::search(me, r)).await
        }
        // Friends, blocks, presence and the conversation list.
        RequestKind::FriendRequest(r) => {
            spawn(conn, &mut t, rid, page, |me| social::friend_request(me, r)).await
        }
        RequestKind::FriendRequests(_) => {
            spawn(conn, &mut t, rid, page, social::friend_requests).await
        }
        RequestKind::FriendRespond(r) => {
            spawn(conn, &mut t, rid, page, |me| social::friend_respond(me, r)).await
        }
        RequestKind::Friends(_) => spawn(conn, &mut t, rid, page, social::friends).await,
        RequestKind::SetRemark(r) => {
            spawn(conn, &mut t, rid, page, |me| social::set_remark(me, r)).await
        }
        RequestKind::DeleteFriend(r) => {
            spawn(conn, &mut t, rid, page, |me| social::delete_friend(me, r)).await
        }
        RequestKind::Block(r) => spawn(conn, &mut t, rid, page, |me| social::block(me, r)).await,
        RequestKind::Unblock(r) => {
            spawn(conn, &mut t, rid, page, |me| social::unblock(me, r)).await
        }
        RequestKind::Blocked(_) => spawn(conn, &mut t, rid, page, social::blocked).await,
        RequestKind::Presence(r) => {
            spawn(conn, &mut t, rid, page, |me| social::presence(me, r)).await
        }
        RequestKind::Conversations(r) => {
            spawn(conn, &mut t, rid, page, |me| social::conversations(me, r)).await
        }
        // Groups.
        RequestKind::GroupCreate(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::create(me, r)).await
        }
        RequestKind::GroupInfo(r) => spawn(conn, &mut t, rid, page, |me| groups::info(me, r)).await,
        RequestKind::GroupUpdate(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::update(me, r)).await
        }
        RequestKind::GroupInvite(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::invite(me, r)).await
        }
        RequestKind::GroupRemove(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::remove(me, r)).await
        }
        RequestKind::GroupLeave(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::leave(me, r)).await
        }
        RequestKind::GroupDismiss(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::dismiss(me, r)).await
        }
        RequestKind::GroupTransfer(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::transfer(me, r)).await
        }
        RequestKind::GroupSetRole(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::set_role(me, r)).await
        }
        RequestKind::GroupMembers(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::members(me, r)).await
        }
        RequestKind::GroupSetCard(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::set_card(me, r)).await
        }
        RequestKind::GroupMute(r) => spawn(conn, &mut t, rid, page, |me| groups::mute(me, r)).await,
        RequestKind::GroupMuteAll(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::mute_all(me, r)).await
        }
        RequestKind::Groups(_) => spawn(conn, &mut t, rid, page, groups::list).await,
        RequestKind::GroupInvites(_) => spawn(conn, &mut t, rid, page, groups::invites).await,
        RequestKind::GroupAnswerInvite(r) => {
            spawn(conn, &mut t, rid, page, |me| groups::answer_invite(me, r)).await
        }
        // World rooms: joining and leaving change the connection, on its task.
        RequestKind::RoomJoin(r) => rooms::join(conn, rid, r),
        RequestKind::RoomLeave(r) => rooms::leave(conn, rid, r),
        RequestKind::RoomMembers(r) => {
            spawn(conn, &mut t, rid, page, |me| rooms::members(me, r)).await
        }
        RequestKind::RoomSend(r) => rooms::send(conn, rid, r).await,
        RequestKind::RoomHistory(r) => {
            spawn(conn, &mut t, rid, page, |me| rooms::history(me, r)).await
        }
        // Red packets (sent like a message: queued, acked after the commit) and wallets.
        RequestKind::RedPacketSend(r) => red_packet::send(conn, rid, r).await,
        RequestKind::RedPacketGrab(r) => {
            spawn(conn, &mut t, rid, SMALL_REPLY, |me| red_packet::grab(me, r)).await
        }
        RequestKind::RedPacketInfo(r) => {
            spawn(conn, &mut t, rid, page, |me| red_packet::info(me, r)).await
        }
        RequestKind::Wallet(_) => spawn(conn, &mut t, rid, SMALL_REPLY, red_packet::wallet).await,
        RequestKind::WalletTopUp(r) => {
            spawn(conn, &mut t, rid, SMALL_REPLY, |me| {
                red_packet::top_up(me, r)
            })
            .await
        }
        RequestKind::MarkRead(r) => {
            spawn(conn, &mut t, rid, page, |me| receipts::mark_read(me, r)).await
        }
        // Receipts and recall; friend groups and suggestions.
        RequestKind::Receipts(r) => {
            spawn(conn, &mut t, rid, page, |me| receipts::receipts(me, r)).await
        }
        RequestKind::Recall(r) => {
            spawn(conn, &mut t, rid, SMALL_REPLY, |me| receipts::recall(me, r)).await
        }
        RequestKind::Recalls(r) => {
            spawn(conn, &mut t, rid, page, |me| receipts::recalls(me, r)).await
        }
        RequestKind::FriendGroups(_) => {
            spawn(conn, &mut t, rid, page, contacts::friend_groups).await
        }
        RequestKind::FriendGroupSet(r) => {
            spawn(conn, &mut t, rid, page, |me| {
                contacts::set_friend_group(me, r)
            })
            .await
        }
        RequestKind::FriendSuggestions(r) => {
            spawn(conn, &mut t, rid, page, |me| contacts::suggestions(me, r)).await
        }
        // Files: chunks are served off the connection task once it has room for their
        // bytes; the bytes are read and written on the file pool.
        RequestKind::UploadBegin(r) => {
            let room = upload::reply_room(&conn.shared.config);
            spawn(conn, &mut t, rid, room, |me| upload::begin(me, r)).await
        }
        RequestKind::UploadChunk(r) => upload::chunk(conn, rid, r).await,
        RequestKind::UploadFinish(r) => {
            let room = upload::reply_room(&conn.shared.config);
            spawn(conn, &mut t, rid, room, |me| upload::finish(me, r)).await
        }
        RequestKind::UploadAbort(r) => {
            spawn(conn, &mut t, rid, SMALL_REPLY, |me| upload::abort(me, r)).await
        }
        RequestKind::Download(r) => {
            spawn(conn, &mut t, rid, download::PART_REPLY, |me| {
                download::download(me, r)
            })
            .await
        }
        RequestKind::DownloadMany(r) => {
            spawn(conn, &mut t, rid, page, |me| download::download_many(me, r)).await
        }
        RequestKind::FileInfo(r) => {
            spawn(conn, &mut t, rid, page, |me| download::get_files(me, r)).await
        }
        // Stickers and file offers.
        RequestKind::StickerAdd(r) => {
            spawn(conn, &mut t, rid, page, |me| stickers::add(me, r)).await
        }
        RequestKind::StickerRemove(r) => {
            spawn(conn, &mut t, rid, page, |me| stickers::remove(me, r)).await
        }
        RequestKind::Stickers(_) => spawn(conn, &mut t, rid, page, stickers::list).await,
        RequestKind::FileOfferAnswer(r) => {
            spawn(conn, &mut t, rid, SMALL_REPLY, |me| offers::answer(me, r)).await
        }
        // System notifications.
        RequestKind::Notifications(r) => {
            spawn(conn, &mut t, rid, page, |me| notifications::list(me, r)).await
        }
        RequestKind::NotificationRead(r) => {
            spawn(conn, &mut t, rid, SMALL_REPLY, |me| {
                notifications::mark_read(me, r)
            })
            .await
        }
        // Verification codes: before login (but ChangeContact), on the connection task.
        RequestKind::RequestCode(r) => codes::request_code(conn, rid, r).await,
        RequestKind::LoginCode(r) => codes::login_code(conn, rid, r).await,
        RequestKind::ResetPassword(r) => codes::reset_password(conn, rid, r).await,
        RequestKind::ChangeContact(r) => {
            spawn(conn, &mut t, rid, SMALL_REPLY, |me| {
                codes::change_contact(me, r)
            })
            .await
        }
        // Speech-to-text: on the speech workers; the reply holds at most max_text_len bytes.
        RequestKind::Transcribe(r) => {
            let room = speech::reply_room(conn.shared.config.max_text_len);
            spawn(conn, &mut t, rid, room, |me| speech::transcribe(me, r)).await
        }
    };
    if let Some(t) = t {
        conn.shared
            .metrics
            .request_done(t.family, t.started.elapsed());
    }
    flow
}

/// The family a request kind's latency is counted in.
fn family(kind: &RequestKind) -> Family {
    use RequestKind as K;
    match kind {
        K::Hello(_)
        | K::Ping(_)
        | K::Register(_)
        | K::Login(_)
        | K::Resume(_)
        | K::Logout(_)
        | K::RevokeSession(_)
        | K::Sessions(_)
        | K::RequestCode(_)
        | K::LoginCode(_)
        | K::ResetPassword(_)
        | K::ChangeContact(_)
        | K::LoginTotp(_)
        | K::TotpSetup(_)
        | K::TotpEnable(_)
        | K::TotpDisable(_)
        | K::CloseAccount(_) => Family::Account,
        K::SendMessage(_) | K::Sync(_) | K::Ack(_) | K::History(_) | K::Search(_) => {
            Family::Message
        }
        K::Whoami(_)
        | K::UpdateProfile(_)
        | K::ChangePassword(_)
        | K::GetUser(_)
        | K::SearchUsers(_) => Family::Profile,
        K::FriendRequest(_)
        | K::FriendRequests(_)
        | K::FriendRespond(_)
        | K::Friends(_)
        | K::SetRemark(_)
        | K::DeleteFriend(_)
        | K::Block(_)
        | K::Unblock(_)
        | K::Blocked(_)
        | K::Presence(_)
        | K::Conversations(_)
        | K::Notifications(_)
        | K::NotificationRead(_) => Family::Social,
        K::GroupCreate(_)
        | K::GroupInfo(_)
        | K::GroupUpdate(_)
        | K::GroupInvite(_)
        | K::GroupRemove(_)
        | K::GroupLeave(_)
        | K::GroupDismiss(_)
        | K::GroupTransfer(_)
        | K::GroupSetRole(_)
        | K::GroupMembers(_)
        | K::GroupSetCard(_)
        | K::GroupMute(_)
        | K::GroupMuteAll(_)
        | K::Groups(_)
        | K::GroupInvites(_)
        | K::GroupAnswerInvite(_) => Family::Groups,
        K::RoomJoin(_)
        | K::RoomLeave(_)
        | K::RoomMembers(_)
        | K::RoomSend(_)
        | K::RoomHistory(_) => Family::Rooms,
        K::RedPacketSend(_)
        | K::RedPacketGrab(_)
        | K::RedPacketInfo(_)
        | K::Wallet(_)
        | K::WalletTopUp(_) => Family::RedPacket,
        K::MarkRead(_) | K::Receipts(_) | K::Recall(_) | K::Recalls(_) => Family::Receipts,
        K::FriendGroups(_) | K::FriendGroupSet(_) | K::FriendSuggestions(_) => Family::Contacts,
        K::UploadBegin(_)
        | K::UploadChunk(_)
        | K::UploadFinish(_)
        | K::UploadAbort(_)
        | K::Download(_)
        | K::DownloadMany(_)
        | K::FileInfo(_)
        | K::StickerAdd(_)
        | K::StickerRemove(_)
        | K::Stickers(_)
        | K::FileOfferAnswer(_) => Family::Files,
        K::Transcribe(_) => Family::Speech,
    }
}

/// Serves a request that needs a login on its own task, with `room` bytes of the outbox
/// reserved for its reply ([`Conn::spawn_reply`]); before login, answers `NOT_LOGGED_IN`.
/// Takes the request's timing and records its latency when the handler is done.
async fn spawn<H, F>(
    conn: &mut Conn,
    timing: &mut Option<Timing>,
    rid: u64,
    room: usize,
    handler: H,
) -> Flow
where
    H: FnOnce(Caller) -> F,
    F: Future<Output = Reply> + Send + 'static,
{
    let Some(me) = conn.caller() else {
        return conn.not_logged_in(rid);
    };
    let fut = handler(me);
    match timing.take() {
        Some(t) => {
            let metrics = conn.shared.metrics.clone();
            let timed = async move {
                let reply = fut.await;
                metrics.request_done(t.family, t.started.elapsed());
                reply
            };
            conn.spawn_reply(rid, room, timed).await
        }
        None => conn.spawn_reply(rid, room, fut).await,
    }
}
