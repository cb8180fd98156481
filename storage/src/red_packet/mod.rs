//! Red packets (抢红包): money a member puts into a conversation, taken share by share by its
//! members. A packet's id is the id of its message (kind RED_PACKET), stored with the debit
//! of the sender's wallet in one transaction ([`attachment`], run by the writer through
//! [`crate::Writer::send_attached`]). Grabs and refunds are writer jobs, so they are
//! serialised: each grab sees the packet as the grab before left it. A share's amount is
//! drawn at the grab ([`split`]); what the packet holds is a ledger account
//! ([`crate::wallet::Account::RedPacket`]), moved to the grabber, or back to the sender once
//! the packet expires.

pub(crate) mod migration;
pub mod split;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::int::{get_u64, Uint};
use crate::wallet::{self, Account, Reason};
use crate::writer::{Attached, Attachment};
use crate::{ConversationId, StorageError, UserId};
pub use split::Mode;

/// A red packet to send (validated by the caller: `count >= 1`, `total_cents >= count`).
#[derive(Debug, Clone)]
pub struct NewPacket {
    /// The amount shared out.
    pub total_cents: u64,
    /// Shares.
    pub count: u32,
    /// Equal or random.
    pub mode: Mode,
    /// The greeting (also the message's text).
    pub greeting: String,
    /// How long it may be grabbed from; then the rest goes back.
    pub expires_in_ms: i64,
    /// The configured initial balance of a wallet that never moved.
    pub initial_cents: i64,
}

/// The work stored with a red packet's message: debits the sender (refused with
/// [`StorageError::InsufficientFunds`]) and records the packet under the message's id.
pub fn attachment(p: NewPacket) -> Attachment {
    Box::new(move |c: &Connection, m: &Attached<'_>| {
        let total = i64::try_from(p.total_cents)
            .map_err(|_| StorageError::InsufficientFunds { balance_cents: 0 })?;
        wallet::ensure(c, m.sender, p.initial_cents, m.now_ms)?;
        wallet::transfer(
            c,
            Account::User(m.sender),
            Account::RedPacket(m.message_id),
            total,
            Reason::RedPacketSent,
            m.message_id,
            m.now_ms,
        )?;
        c.prepare_cached(
            "INSERT INTO red_packets(id, conversation_id, sender_id, total_cents, count, mode, greeting,
                 remaining_cents, remaining_count, created_at_ms, expires_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?4, ?5, ?8, ?9)",
        )?
        .execute(params![
            Uint(m.message_id),
            Uint(m.conversation_id),
            Uint(m.sender),
            total,
            p.count,
            p.mode.code(),
            p.greeting,
            m.now_ms,
            m.now_ms.saturating_add(p.expires_in_ms),
        ])?;
        Ok(())
    })
}

/// One share taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrabRecord {
    /// Who took it.
    pub user_id: UserId,
    /// How much.
    pub amount_cents: u64,
    /// When (unix ms).
    pub grabbed_at_ms: i64,
}

/// A red packet as stored, with its grabs.
#[derive(Debug, Clone)]
pub struct RedPacketRecord {
    /// Its id (= its message's id).
    pub id: u64,
    /// Where it was sent.
    pub conversation_id: ConversationId,
    /// Who sent it.
    pub sender_id: UserId,
    /// The amount shared out.
    pub total_cents: u64,
    /// Shares.
    pub count: u32,
    /// Equal or random.
    pub mode: Mode,
    /// The greeting.
    pub greeting: String,
    /// Not yet grabbed (0 once refunded).
    pub remaining_cents: u64,
    /// Shares not yet grabbed.
    pub remaining_count: u32,
    /// When it was sent (unix ms).
    pub created_at_ms: i64,
    /// When it expires (unix ms).
    pub expires_at_ms: i64,
    /// What went back to the sender at expiry.
    pub refunded_cents: u64,
    /// Oldest first.
    pub grabs: Vec<GrabRecord>,
}

/// What a grab did.
#[derive(Debug, Clone)]
pub enum GrabOutcome {
    /// The user took `grab.amount_cents`; the packet as it is now (without its grabs).
    Grabbed {
        /// The share.
        grab: GrabRecord,
        /// The packet after the grab.
        packet: RedPacketRecord,
    },
    /// The packet had expired: its rest (`refunded_cents`, maybe 0 when an earlier refund
    /// took it) is back with the sender, and nothing was taken. Not an error, so that the
    /// refund commits.
    Expired {
        /// Cents this call returned to the sender.
        refunded_cents: u64,
    },
}

const PACKET_COLUMNS: &str = "id, conversation_id, sender_id, total_cents, count, mode, greeting,
    remaining_cents, remaining_count, created_at_ms, expires_at_ms, refunded_cents";

fn packet_row(r: &Row<'_>) -> rusqlite::Result<RedPacketRecord> {
    Ok(RedPacketRecord {
        id: get_u64(r, 0)?,
        conversation_id: get_u64(r, 1)?,
        sender_id: get_u64(r, 2)?,
        total_cents: get_u64(r, 3)?,
        count: r.get(4)?,
        mode: Mode::from_code(r.get(5)?),
        greeting: r.get(6)?,
        remaining_cents: get_u64(r, 7)?,
        remaining_count: r.get(8)?,
        created_at_ms: r.get(9)?,
        expires_at_ms: r.get(10)?,
        refunded_cents: get_u64(r, 11)?,
        grabs: Vec::new(),
    })
}

fn packet(c: &Connection, id: u64) -> Result<RedPacketRecord, StorageError> {
    c.prepare_cached(&format!(
        "SELECT {PACKET_COLUMNS} FROM red_packets WHERE id = ?1"
    ))?
    .query_row([Uint(id)], packet_row)
    .optional()?
    .ok_or(StorageError::UnknownRedPacket)
}

/// Refuses users who are not members of the packet's conversation.
fn check_member(c: &Connection, user: UserId, p: &RedPacketRecord) -> Result<(), StorageError> {
    let member = c
        .prepare_cached(
            "SELECT 1 FROM conversation_members WHERE user_id = ?1 AND conversation_id = ?2",
        )?
        .query_row(params![Uint(user), Uint(p.conversation_id)], |_| Ok(()))
        .optional()?;
    member.ok_or(StorageError::Forbidden)
}

/// The packet `id` with its grabs, for a member of its conversation.
///
/// # Errors
/// [`StorageError::UnknownRedPacket`], [`StorageError::Forbidden`]; database errors.
pub fn info(c: &Connection, user: UserId, id: u64) -> Result<RedPacketRecord, StorageError> {
    let mut p = packet(c, id)?;
    check_member(c, user, &p)?;
    p.grabs = c
        .prepare_cached(
            "SELECT user_id, amount_cents, grabbed_at_ms FROM red_packet_grabs
             WHERE packet_id = ?1 ORDER BY grabbed_at_ms, user_id",
        )?
        .query_map([Uint(id)], |r| {
            Ok(GrabRecord {
                user_id: get_u64(r, 0)?,
                amount_cents: get_u64(r, 1)?,
                grabbed_at_ms: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(p)
}

/// Takes one share of packet `id` for `user`; `uniform(n)` draws the random split's amount
/// in `[0, n)`. Run on the writer ([`crate::Writer::call`]).
///
/// # Errors
/// [`StorageError::UnknownRedPacket`], [`StorageError::Forbidden`] (not a member; or the
/// sender, in a 1:1 conversation), [`StorageError::AlreadyGrabbed`],
/// [`StorageError::RedPacketEmpty`]; database errors.
pub fn grab(
    c: &Connection,
    user: UserId,
    id: u64,
    uniform: impl FnOnce(u64) -> u64,
    initial_cents: i64,
    now: i64,
) -> Result<GrabOutcome, StorageError> {
    let mut p = packet(c, id)?;
    check_member(c, user, &p)?;
    if user == p.sender_id && is_direct(c, p.conversation_id)? {
        return Err(StorageError::Forbidden);
    }
    let taken = c
        .prepare_cached("SELECT 1 FROM red_packet_grabs WHERE packet_id = ?1 AND user_id = ?2")?
        .query_row(params![Uint(id), Uint(user)], |_| Ok(()))
        .optional()?;
    if taken.is_some() {
        return Err(StorageError::AlreadyGrabbed);
    }
    // An empty packet says so, expired or not.
    if p.remaining_count == 0 {
        return Err(StorageError::RedPacketEmpty);
    }
    if now >= p.expires_at_ms {
        let refunded_cents = refund(c, &p, now)?;
        return Ok(GrabOutcome::Expired { refunded_cents });
    }
    let amount = split::next_share(
        p.mode,
        p.remaining_cents,
        u64::from(p.remaining_count),
        uniform,
    );
    let signed = i64::try_from(amount).map_err(|_| StorageError::RedPacketEmpty)?;
    wallet::ensure(c, user, initial_cents, now)?;
    wallet::transfer(
        c,
        Account::RedPacket(id),
        Account::User(user),
        signed,
        Reason::RedPacketGrab,
        id,
        now,
    )?;
    c.prepare_cached(
        "INSERT INTO red_packet_grabs(packet_id, user_id, amount_cents, grabbed_at_ms)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![Uint(id), Uint(user), signed, now])?;
    p.remaining_cents -= amount;
    p.remaining_count -= 1;
    c.prepare_cached(
        "UPDATE red_packets SET remaining_cents = ?2, remaining_count = ?3,
             settled = (?3 = 0) WHERE id = ?1",
    )?
    .execute(params![
        Uint(id),
        Uint(p.remaining_cents),
        p.remaining_count
    ])?;
    Ok(GrabOutcome::Grabbed {
        grab: GrabRecord {
            user_id: user,
            amount_cents: amount,
            grabbed_at_ms: now,
        },
        packet: p,
    })
}

fn is_direct(c: &Connection, conversation: ConversationId) -> Result<bool, StorageError> {
    let kind: Option<i64> = c
        .prepare_cached("SELECT kind FROM conversations WHERE id = ?1")?
        .query_row([Uint(conversation)], |r| r.get(0))
        .optional()?;
    Ok(kind == Some(1))
}

/// Returns an expired packet's rest to its sender and settles it; returns the cents moved.
fn refund(c: &Connection, p: &RedPacketRecord, now: i64) -> Result<u64, StorageError> {
    let settled: i64 = c
        .prepare_cached("SELECT settled FROM red_packets WHERE id = ?1")?
        .query_row([Uint(p.id)], |r| r.get(0))?;
    if settled != 0 {
        return Ok(0);
    }
    let rest = p.remaining_cents;
    let signed = i64::try_from(rest).unwrap_or(i64::MAX);
    wallet::transfer(
        c,
        Account::RedPacket(p.id),
        Account::User(p.sender_id),
        signed,
        Reason::RedPacketRefund,
        p.id,
        now,
    )?;
    c.prepare_cached(
        "UPDATE red_packets SET remaining_cents = 0, refunded_cents = ?2, settled = 1 WHERE id = ?1",
    )?
    .execute(params![Uint(p.id), signed])?;
    Ok(rest)
}

/// Unsettled packets expired at `now`, at most `limit`, oldest expiry first (a read, to see
/// whether [`refund_expired`] has work).
///
/// # Errors
/// Database errors.
pub fn expired(c: &Connection, now: i64, limit: usize) -> Result<Vec<u64>, StorageError> {
    Ok(c.prepare_cached(
        "SELECT id FROM red_packets WHERE settled = 0 AND expires_at_ms <= ?1
         ORDER BY expires_at_ms LIMIT ?2",
    )?
    .query_map(params![now, Uint::from_usize(limit)], |r| get_u64(r, 0))?
    .collect::<Result<_, _>>()?)
}

/// Returns the rest of up to `limit` expired packets to their senders (a writer job);
/// returns how many were refunded.
///
/// # Errors
/// Database errors.
pub fn refund_expired(c: &Connection, now: i64, limit: usize) -> Result<usize, StorageError> {
    let ids = expired(c, now, limit)?;
    for &id in &ids {
        refund(c, &packet(c, id)?, now)?;
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests;
