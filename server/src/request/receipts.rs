//! Delivery and read receipts, and recall: Ack and MarkRead (which push a `read_receipt` to
//! the peer of a direct conversation when the user-level position moved), GetReceipts and
//! RecallMessage. Each is served on its own task; writes go through the storage writer
//! (ordered with sends), pushes go out after the commit.

use feige_protocol::{pb, PushKind, ResponseResult};
use feige_storage::receipts::{self, ReceiptMove};

use super::caller::{Caller, Reply};
use crate::convert;
use crate::validate::{self, page_limit};

const RECALLS_DEFAULT: u32 = 100;
const RECALLS_MAX: u32 = 500;

/// Tells the other member of a direct conversation that `m.user`'s receipts moved.
fn push_receipt(me: &Caller, m: &ReceiptMove) {
    me.push_to(
        &[m.peer],
        PushKind::ReadReceipt(pb::ReadReceipt {
            conversation_id: m.conversation_id,
            user_id: m.user,
            read_seq: m.read_seq,
            delivered_seq: m.delivered_seq,
        }),
    );
}

/// Serves `Ack`: stores the device's positions (through the writer); for each direct
/// conversation where the user's delivered position (over all their devices) moved, the
/// peer gets one `read_receipt` push.
pub(crate) async fn ack(me: Caller, a: pb::Ack) -> Reply {
    let pos = validate::positions(&a.positions)?;
    if !pos.is_empty() {
        let device = me.device.clone();
        let moved = me.shared.writer.ack_receipts(me.user, device, pos).await?;
        for m in &moved {
            push_receipt(&me, m);
        }
    }
    Ok(ResponseResult::Ack(pb::AckOk {}))
}

/// Serves `MarkRead`; the user's other connections get a `read_position` push, and in a
/// direct conversation the peer a `read_receipt` when the position moved.
pub(crate) async fn mark_read(me: Caller, r: pb::MarkRead) -> Reply {
    validate::required_id("conversation_id", r.conversation_id)?;
    let (pos, moved) = me
        .shared
        .writer
        .mark_read_receipt(me.user, r.conversation_id, r.seq)
        .await?;
    let pos = convert::read_position(&pos);
    me.push(me.user, PushKind::ReadPosition(pos));
    if let Some(m) = &moved {
        push_receipt(&me, m);
    }
    Ok(ResponseResult::MarkRead(pos))
}

/// Serves `GetReceipts`: who received and read one message.
pub(crate) async fn receipts(me: Caller, r: pb::GetReceipts) -> Reply {
    let conversation = validate::required_id("conversation_id", r.conversation_id)?;
    let seq = validate::required_id("seq", r.seq)?;
    let got = me.shared.store.receipts(me.user, conversation, seq).await?;
    Ok(ResponseResult::Receipts(pb::Receipts {
        conversation_id: got.conversation_id,
        seq: got.seq,
        read_count: got.read_count,
        unread_count: got.unread_count,
        readers: got.readers.iter().map(convert::public).collect(),
        peer_read_seq: got.peer_read_seq,
        peer_delivered_seq: got.peer_delivered_seq,
        direct: got.direct,
    }))
}

/// Serves `RecallMessage`: through the writer, so it is ordered with sends; every member
/// gets a `message_recalled` push (the caller's other connections too).
pub(crate) async fn recall(me: Caller, r: pb::RecallMessage) -> Reply {
    let conversation = validate::required_id("conversation_id", r.conversation_id)?;
    let seq = validate::required_id("seq", r.seq)?;
    let window_ms = me.shared.config.recall_window_s.saturating_mul(1000);
    let done = me
        .shared
        .writer
        .recall(me.user, conversation, seq, window_ms)
        .await?;
    let push = PushKind::MessageRecalled(recalled(&done));
    let others: Vec<_> = done
        .members
        .iter()
        .copied()
        .filter(|&u| u != me.user)
        .collect();
    me.push_to(&others, push.clone());
    me.push(me.user, push);
    Ok(ResponseResult::Recall(pb::Done {}))
}

/// Serves `ListRecalls`: the recalls in the caller's conversations after a cursor.
pub(crate) async fn recalls(me: Caller, r: pb::ListRecalls) -> Reply {
    let after = validate::id("after_recall_id", r.after_recall_id)?;
    let limit = page_limit(r.limit, RECALLS_DEFAULT, RECALLS_MAX);
    let user = me.user;
    // One more than asked: whether more follow.
    let mut list = me
        .shared
        .store
        .read(move |c| receipts::recalls(c, user, after, limit + 1))
        .await?;
    let has_more = list.len() > limit;
    list.truncate(limit);
    Ok(ResponseResult::Recalls(pb::RecallList {
        recalls: list.iter().map(recalled).collect(),
        has_more,
    }))
}

fn recalled(r: &receipts::Recalled) -> pb::MessageRecalled {
    pb::MessageRecalled {
        conversation_id: r.conversation_id,
        seq: r.seq,
        message_id: r.message_id,
        recalled_by: r.recalled_by,
        recall_id: r.recall_id,
        recalled_at_ms: r.recalled_at_ms,
    }
}
