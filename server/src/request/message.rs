//! SendMessage (queued to the writer; acked by the router after commit), and Sync, Ack,
//! History and Search (served from the reader pool on their own tasks).

use feige_protocol::{pb, ErrorCode, ResponseResult};
use feige_storage::{HistoryQuery, Mentions, NewMessage, StoredMessage, Target, UserId};

use super::caller::{Caller, Conn, Flow, Reply};
use crate::convert;
use crate::error::RequestError;
use crate::router::ReplyTo;
use crate::validate::{self, page_limit, MESSAGE_QUERY};

const SYNC_DEFAULT: u32 = 500;
const SYNC_MAX: u32 = 1000;
const HISTORY_DEFAULT: u32 = 50;
const HISTORY_MAX: u32 = 200;
const SEARCH_DEFAULT: u32 = 20;
const SEARCH_MAX: u32 = 100;
/// Most users one message mentions.
const MAX_MENTIONS: usize = 100;
/// Serves `SendMessage`: checks the sender's rate, validates the message and queues it; the
/// router acks it after the commit. The hot path: it needs only the sender's id, not a copy of
/// the login.
pub(crate) async fn send(conn: &mut Conn, rid: u64, m: pb::SendMessage) -> Flow {
    conn.send_like_message(rid, async |conn, sender| {
        let msg = prepare(conn, rid, sender, m).await?;
        Ok(conn.shared.writer.send_message(msg).await?)
    })
    .await
}

/// Validates a message and makes it ready for the writer, with where its ack goes.
async fn prepare(
    conn: &Conn,
    rid: u64,
    sender: UserId,
    m: pb::SendMessage,
) -> Result<NewMessage<ReplyTo>, RequestError> {
    let to_user = validate::id("to_user", m.to_user)?;
    let conversation_id = validate::id("conversation_id", m.conversation_id)?;
    let target = match (to_user, conversation_id) {
        (0, 0) => return Err(RequestError::invalid("set to_user or conversation_id")),
        (to, 0) => Target::Direct(to),
        (0, c) => Target::Conversation(c),
        _ => {
            return Err(RequestError::invalid(
                "set only one of to_user and conversation_id",
            ))
        }
    };
    match pb::MessageKind::try_from(m.kind) {
        Err(_) => {
            return Err(RequestError::invalid(format!(
                "unknown message kind {}",
                m.kind
            )))
        }
        // System notices come from the server only; a recalled message is made by a recall.
        Ok(pb::MessageKind::System) => {
            return Err(RequestError::invalid("clients cannot send system messages"))
        }
        // A red packet's message is stored with its debit (SendRedPacket).
        Ok(pb::MessageKind::RedPacket) => {
            return Err(RequestError::invalid(
                "red packets are sent with SendRedPacket, not SendMessage",
            ))
        }
        Ok(pb::MessageKind::Recalled) => {
            return Err(RequestError::invalid(
                "clients cannot send recalled messages (use RecallMessage)",
            ))
        }
        Ok(_) => {}
    }
    // A file message's text is an optional caption.
    if !(carries_file(m.kind) && m.text.is_empty()) {
        validate::message_text(&m.text, conn.shared.config.max_text_len)?;
    }
    // Mentions: groups only (the writer checks the members and the sender's role).
    let mentions = if m.mentions.is_empty() && !m.mention_all {
        None
    } else {
        if !matches!(target, Target::Conversation(_)) {
            return Err(RequestError::invalid("mentions are for group messages"));
        }
        if m.mentions.len() > MAX_MENTIONS {
            return Err(RequestError::invalid(format!(
                "at most {MAX_MENTIONS} mentions per message"
            )));
        }
        let mut users = m.mentions;
        users.sort_unstable();
        users.dedup();
        Some(Box::new(Mentions {
            users,
            all: m.mention_all,
        }))
    };
    let file = if m.file_id == 0 && !m.offer && !carries_file(m.kind) {
        None
    } else {
        crate::files::message_file(&conn.shared, sender, m.kind, m.file_id, m.offer).await?
    };
    Ok(NewMessage {
        ctx: ReplyTo {
            request_id: rid,
            conn_id: conn.conn_id,
            outbox: conn.tx.clone(),
        },
        sender,
        target,
        client_msg_id: m.client_msg_id,
        kind: m.kind,
        text: m.text,
        mentions,
        file,
    })
}

/// Whether messages of `kind` carry a file (plain text skips the file checks).
fn carries_file(kind: i32) -> bool {
    use pb::MessageKind as K;
    matches!(
        K::try_from(kind),
        Ok(K::Image | K::File | K::Voice | K::Video | K::Sticker)
    )
}

/// Serves `Sync`: one page of what the device missed.
pub(crate) async fn sync(me: Caller, s: pb::Sync) -> Reply {
    let pos = validate::positions(&s.positions)?;
    let page = me
        .shared
        .store
        .sync_within(
            me.user,
            me.device.clone(),
            pos,
            page_limit(s.limit, SYNC_DEFAULT, SYNC_MAX),
            me.shared.config.reply_page_bytes(),
        )
        .await?;
    Ok(ResponseResult::Sync(pb::SyncPage {
        messages: for_reader(&me, page.messages).await?,
        has_more: page.has_more,
    }))
}

/// Serves `History`: a page of one conversation, newest first.
pub(crate) async fn history(me: Caller, q: pb::History) -> Reply {
    let conversation_id = validate::id("conversation_id", q.conversation_id)?;
    let peer_user = validate::id("peer_user", q.peer_user)?;
    let conversation = match (conversation_id, peer_user) {
        (0, 0) => return Err(RequestError::invalid("set conversation_id or peer_user")),
        (c, 0) => c,
        (0, peer) => match me.shared.store.direct_conversation(me.user, peer).await? {
            Some(c) => c,
            None => {
                if me.shared.store.user_by_id(peer).await?.is_none() {
                    return Err(RequestError::new(ErrorCode::NotFound, "no such user"));
                }
                return Ok(ResponseResult::History(pb::Messages::default()));
            }
        },
        _ => {
            return Err(RequestError::invalid(
                "set only one of conversation_id and peer_user",
            ))
        }
    };
    let query = HistoryQuery {
        conversation,
        before_seq: (q.before_seq != 0).then_some(q.before_seq),
        after_seq: (q.after_seq != 0).then_some(q.after_seq),
        since_ms: (q.since_ms != 0).then_some(q.since_ms),
        until_ms: (q.until_ms != 0).then_some(q.until_ms),
        limit: page_limit(q.limit, HISTORY_DEFAULT, HISTORY_MAX),
    };
    let page = me
        .shared
        .store
        .history_page(me.user, query, me.shared.config.reply_page_bytes())
        .await?;
    Ok(ResponseResult::History(pb::Messages {
        messages: for_reader(&me, page.messages).await?,
        has_more: page.has_more,
    }))
}

/// The messages as the caller sees them: a file offer's state is the caller's answer (in a
/// direct conversation, the sender sees the recipient's).
async fn for_reader(
    me: &Caller,
    messages: Vec<StoredMessage>,
) -> Result<Vec<pb::Message>, RequestError> {
    let offers: Vec<(usize, (u64, u64))> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.file.as_ref().is_some_and(|f| f.offer))
        .map(|(i, m)| (i, (m.conversation_id, m.seq)))
        .collect();
    let mut out: Vec<pb::Message> = messages.into_iter().map(convert::message).collect();
    crate::twofactor::mark_closed(&me.shared, &mut out);
    if offers.is_empty() {
        return Ok(out);
    }
    let user = me.user;
    let keys: Vec<(u64, u64)> = offers.iter().map(|(_, k)| *k).collect();
    let states = me
        .shared
        .store
        .read(move |c| feige_storage::blobs::offer_states(c, user, &keys))
        .await?;
    for ((i, _), state) in offers.iter().zip(states) {
        if let Some(m) = out.get_mut(*i) {
            m.offer = i32::try_from(state).unwrap_or(0);
        }
    }
    Ok(out)
}

/// Serves `Search`: full-text search over the caller's conversations, newest first.
pub(crate) async fn search(me: Caller, q: pb::Search) -> Reply {
    let query = validate::text(&MESSAGE_QUERY, &q.query)?;
    if feige_storage::search::fts_query(&query).is_none() {
        return Err(RequestError::invalid("query has no searchable words"));
    }
    let conversation = validate::id("conversation_id", q.conversation_id)?;
    // Message ids are below 2^63: a larger `before_id` bounds nothing (from the newest).
    let before = (q.before_id != 0 && q.before_id <= i64::MAX as u64).then_some(q.before_id);
    let limit = page_limit(q.limit, SEARCH_DEFAULT, SEARCH_MAX);
    let found = me
        .shared
        .store
        .search(
            me.user,
            query,
            (conversation != 0).then_some(conversation),
            before,
            limit,
        )
        .await?;
    let full = found.len() == limit;
    // At most `SEARCH_MAX` messages are read; the page keeps those that fit its byte budget.
    let mut left = me.shared.config.reply_page_bytes();
    let mut messages = Vec::with_capacity(found.len());
    for m in for_reader(&me, found).await? {
        let cost = prost::Message::encoded_len(&m) + 6;
        if !messages.is_empty() && cost > left {
            return Ok(ResponseResult::Search(pb::Messages {
                messages,
                has_more: true,
            }));
        }
        left = left.saturating_sub(cost);
        messages.push(m);
    }
    Ok(ResponseResult::Search(pb::Messages {
        messages,
        has_more: full,
    }))
}
