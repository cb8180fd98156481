//! Red packets and wallets: SendRedPacket (queued to the writer as a message with the debit
//! attached, acked by the router after the commit like SendMessage), GrabRedPacket (a writer
//! job; the sender hears of each grab by a push), GetRedPacket and GetWallet (reads), TopUp
//! (admins only), and the upkeep that returns expired packets' rest ([`refund_expired`]).

use std::sync::Arc;
use std::time::Duration;

use feige_protocol::{pb, ErrorCode, PushKind, ResponseResult};
use feige_storage::red_packet::{self, GrabOutcome, Mode, NewPacket, RedPacketRecord};
use feige_storage::{now_ms, wallet, NewMessage, Target};

use super::caller::{Caller, Conn, Flow, Reply};
use crate::error::RequestError;
use crate::router::ReplyTo;
use crate::validate::{self, Field};
use crate::Shared;

/// Most shares of one packet.
const MAX_SHARES: u32 = 1000;
/// Largest packet, and largest top-up: 1,000,000.00.
const MAX_CENTS: u64 = 100_000_000;
/// The greeting of a packet sent without one.
const DEFAULT_GREETING: &str = "恭喜发财，大吉大利";
/// A packet's greeting: up to 128 characters on one line.
const GREETING: Field = Field {
    name: "greeting",
    min_chars: 0,
    max_chars: 128,
    max_bytes: 512,
    multiline: false,
    name_like: false,
};
/// Expired packets refunded per writer job.
const REFUNDS_PER_JOB: usize = 256;

/// Serves `SendRedPacket`: the sender's message rate, the packet's fields, then the message
/// and its debit go to the writer together; the router acks with SendOk after the commit.
pub(crate) async fn send(conn: &mut Conn, rid: u64, r: pb::SendRedPacket) -> Flow {
    conn.send_like_message(rid, async |conn, sender| queue(conn, rid, sender, r).await)
        .await
}

async fn queue(
    conn: &Conn,
    rid: u64,
    sender: u64,
    r: pb::SendRedPacket,
) -> Result<(), RequestError> {
    let conversation = validate::required_id("conversation_id", r.conversation_id)?;
    if r.count == 0 || r.count > MAX_SHARES {
        return Err(RequestError::invalid(format!(
            "count must be 1..={MAX_SHARES}"
        )));
    }
    if r.total_cents > MAX_CENTS {
        return Err(RequestError::invalid(format!(
            "total_cents must be at most {MAX_CENTS}"
        )));
    }
    if r.total_cents < u64::from(r.count) {
        return Err(RequestError::invalid(
            "total_cents must be at least count: every share is at least one cent",
        ));
    }
    let mode = match pb::RedPacketMode::try_from(r.mode) {
        Ok(pb::RedPacketMode::Random) => Mode::Random,
        Ok(pb::RedPacketMode::Equal) => Mode::Equal,
        Err(_) => return Err(RequestError::invalid(format!("unknown mode {}", r.mode))),
    };
    let greeting = match validate::text(&GREETING, &r.greeting)? {
        g if g.is_empty() => DEFAULT_GREETING.to_owned(),
        g => g,
    };
    let config = &conn.shared.config;
    let attach = red_packet::attachment(NewPacket {
        total_cents: r.total_cents,
        count: r.count,
        mode,
        greeting: greeting.clone(),
        expires_in_ms: i64::try_from(config.red_packet_expiry_ms).unwrap_or(i64::MAX),
        initial_cents: initial(&conn.shared),
    });
    let msg = NewMessage {
        ctx: ReplyTo {
            request_id: rid,
            conn_id: conn.conn_id,
            outbox: conn.tx.clone(),
        },
        sender,
        target: Target::Conversation(conversation),
        client_msg_id: r.client_msg_id,
        kind: pb::MessageKind::RedPacket as i32,
        text: greeting,
        mentions: None,
        file: None,
    };
    Ok(conn.shared.writer.send_attached(msg, attach).await?)
}

fn initial(shared: &Shared) -> i64 {
    i64::try_from(shared.config.wallet_initial_cents).unwrap_or(0)
}

/// Serves `GrabRedPacket`: takes a share (a writer job, so grabs are serialised); the sender's
/// connections get a `red_packet_grabbed` push. A packet found expired is refunded first.
pub(crate) async fn grab(me: Caller, r: pb::GrabRedPacket) -> Reply {
    let id = validate::required_id("packet_id", r.packet_id)?;
    let (user, init, rng) = (me.user, initial(&me.shared), me.shared.rng.clone());
    let outcome = me
        .shared
        .writer
        .call(move |c| {
            let uniform = |n| red_packet::split::uniform(&rng, n);
            red_packet::grab(c, user, id, uniform, init, now_ms())
        })
        .await?;
    match outcome {
        GrabOutcome::Grabbed { grab, packet } => {
            let push = PushKind::RedPacketGrabbed(pb::RedPacketGrabbed {
                packet_id: id,
                conversation_id: packet.conversation_id,
                user_id: user,
                amount_cents: grab.amount_cents,
                remaining_count: packet.remaining_count,
                remaining_cents: packet.remaining_cents,
            });
            me.push(packet.sender_id, push);
            Ok(ResponseResult::RedPacketGrab(pb::RedPacketGrab {
                packet_id: id,
                user_id: user,
                amount_cents: grab.amount_cents,
                grabbed_at_ms: grab.grabbed_at_ms,
            }))
        }
        GrabOutcome::Expired { .. } => Err(RequestError::new(
            ErrorCode::RedPacketExpired,
            "this red packet has expired; what was left went back to its sender",
        )),
    }
}

/// Serves `GetRedPacket`: the packet and its grabs, for members of its conversation.
pub(crate) async fn info(me: Caller, r: pb::GetRedPacket) -> Reply {
    let id = validate::required_id("packet_id", r.packet_id)?;
    let user = me.user;
    let p = me
        .shared
        .store
        .read(move |c| red_packet::info(c, user, id))
        .await?;
    Ok(ResponseResult::RedPacketInfo(packet(p, now_ms())))
}

fn packet(p: RedPacketRecord, now: i64) -> pb::RedPacket {
    pb::RedPacket {
        packet_id: p.id,
        conversation_id: p.conversation_id,
        sender_id: p.sender_id,
        total_cents: p.total_cents,
        count: p.count,
        mode: match p.mode {
            Mode::Random => pb::RedPacketMode::Random as i32,
            Mode::Equal => pb::RedPacketMode::Equal as i32,
        },
        greeting: p.greeting,
        grabs: p
            .grabs
            .into_iter()
            .map(|g| pb::RedPacketGrab {
                packet_id: p.id,
                user_id: g.user_id,
                amount_cents: g.amount_cents,
                grabbed_at_ms: g.grabbed_at_ms,
            })
            .collect(),
        remaining_cents: p.remaining_cents,
        remaining_count: p.remaining_count,
        created_at_ms: p.created_at_ms,
        expires_at_ms: p.expires_at_ms,
        expired: now >= p.expires_at_ms,
        refunded_cents: p.refunded_cents,
    }
}

/// Serves `GetWallet`: the caller's balance.
pub(crate) async fn wallet(me: Caller) -> Reply {
    let (user, init) = (me.user, initial(&me.shared));
    let balance = me
        .shared
        .store
        .read(move |c| wallet::balance(c, user, init))
        .await?;
    Ok(ResponseResult::Wallet(pb::Wallet {
        user_id: user,
        balance_cents: balance,
    }))
}

/// Serves `TopUp`: an admin (config `admins`) credits a user's wallet from the system
/// account; answers the user's new balance.
pub(crate) async fn top_up(me: Caller, r: pb::TopUp) -> Reply {
    let target = validate::required_id("user_id", r.user_id)?;
    if r.amount_cents == 0 || r.amount_cents > MAX_CENTS {
        return Err(RequestError::invalid(format!(
            "amount_cents must be 1..={MAX_CENTS}"
        )));
    }
    let user = me.user;
    let profile = me
        .shared
        .store
        .read(move |c| feige_storage::social::own_profile(c, user))
        .await?;
    let admin = profile.is_some_and(|p| {
        me.shared
            .config
            .admins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&p.username))
    });
    if !admin {
        return Err(RequestError::new(
            ErrorCode::Forbidden,
            "only the server's admins may top up wallets",
        ));
    }
    let (amount, init) = (r.amount_cents.cast_signed(), initial(&me.shared));
    let balance = me
        .shared
        .writer
        .call(move |c| wallet::top_up(c, target, amount, init, now_ms()))
        .await?;
    Ok(ResponseResult::WalletTopUp(pb::Wallet {
        user_id: target,
        balance_cents: balance,
    }))
}

/// Until shutdown: returns the rest of expired red packets to their senders, checking
/// every second (or every expiry period, if shorter) with a read, and refunding through
/// the writer only when one is due.
pub(crate) async fn refund_expired(shared: Arc<Shared>) {
    let every = Duration::from_millis(shared.config.red_packet_expiry_ms.clamp(10, 1000));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = shared
            .store
            .read(|c| red_packet::expired(c, now_ms(), 1))
            .await;
        match due {
            Ok(ids) if ids.is_empty() => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for expired red packets");
                continue;
            }
        }
        let done = shared
            .writer
            .call(|c| red_packet::refund_expired(c, now_ms(), REFUNDS_PER_JOB))
            .await;
        match done {
            Ok(n) => tracing::debug!(refunded = n, "expired red packets refunded"),
            Err(feige_storage::StorageError::WorkerGone) => return,
            Err(e) => tracing::warn!(error = %e, "cannot refund expired red packets"),
        }
    }
}
