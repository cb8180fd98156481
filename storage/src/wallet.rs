//! Wallets and their ledger. Every movement of money is two `wallet_ledger` rows of opposite
//! sign sharing a `movement` number, between two accounts: a user's wallet, a red packet (what
//! it still holds), or the system account (the other side of top-ups and initial balances).
//! So the whole ledger sums to zero, and an account's balance is the sum of its rows;
//! `wallets` keeps each user's sum for the debit checks, updated in the same statement group.
//! Writes run on the writer thread ([`crate::Writer::call`]); amounts are integer cents.

use rusqlite::{params, Connection, OptionalExtension};

use crate::int::Uint;
use crate::{StorageError, UserId};

/// One side of a movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    /// The system: the source of top-ups and initial balances.
    System,
    /// A user's wallet.
    User(UserId),
    /// What a red packet still holds.
    RedPacket(u64),
}

impl Account {
    fn key(self) -> (i64, Uint) {
        match self {
            Account::System => (0, Uint(0)),
            Account::User(u) => (1, Uint(u)),
            Account::RedPacket(p) => (2, Uint(p)),
        }
    }
}

/// Why money moved (`wallet_ledger.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum Reason {
    /// An admin credited a user.
    TopUp = 1,
    /// The configured initial balance, at a wallet's first movement.
    Initial = 2,
    /// A red packet was sent: sender → packet.
    RedPacketSent = 3,
    /// A share was grabbed: packet → grabber.
    RedPacketGrab = 4,
    /// An expired packet's rest went back: packet → sender.
    RedPacketRefund = 5,
}

/// `user`'s balance: the stored one, or `initial` for a wallet that never moved (it is
/// credited at its first movement).
///
/// # Errors
/// Database errors.
pub fn balance(c: &Connection, user: UserId, initial: i64) -> Result<i64, StorageError> {
    let stored: Option<i64> = c
        .prepare_cached("SELECT balance_cents FROM wallets WHERE user_id = ?1")?
        .query_row([Uint(user)], |r| r.get(0))
        .optional()?;
    Ok(stored.unwrap_or(initial.max(0)))
}

/// Opens `user`'s wallet if it has none: credited with `initial` from the system account.
///
/// # Errors
/// Database errors.
pub fn ensure(c: &Connection, user: UserId, initial: i64, now: i64) -> Result<(), StorageError> {
    let opened = c
        .prepare_cached(
            "INSERT INTO wallets(user_id, balance_cents) VALUES (?1, 0) ON CONFLICT DO NOTHING",
        )?
        .execute([Uint(user)])?;
    if opened == 1 && initial > 0 {
        transfer(
            c,
            Account::System,
            Account::User(user),
            initial,
            Reason::Initial,
            0,
            now,
        )?;
    }
    Ok(())
}

/// Moves `amount` cents (> 0) from `from` to `to`: two ledger rows, and the wallets' balances.
/// A user's wallet must exist ([`ensure`]) and may not go below zero.
///
/// # Errors
/// [`StorageError::InsufficientFunds`] when `from` is a user holding less; database errors.
pub fn transfer(
    c: &Connection,
    from: Account,
    to: Account,
    amount: i64,
    reason: Reason,
    reference: u64,
    now: i64,
) -> Result<(), StorageError> {
    if amount <= 0 {
        return Ok(());
    }
    if let Account::User(u) = from {
        let have = balance(c, u, 0)?;
        if have < amount {
            return Err(StorageError::InsufficientFunds {
                balance_cents: have,
            });
        }
    }
    let mut row = c.prepare_cached(
        "INSERT INTO wallet_ledger(movement, account_kind, account_id, amount_cents, reason, ref_id, created_at_ms)
         VALUES (COALESCE(?1, (SELECT COALESCE(MAX(id), 0) + 1 FROM wallet_ledger)), ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let (kind, id) = from.key();
    row.execute(params![
        Option::<i64>::None,
        kind,
        id,
        -amount,
        reason as i64,
        Uint(reference),
        now
    ])?;
    let movement = c.last_insert_rowid();
    let (kind, id) = to.key();
    row.execute(params![
        movement,
        kind,
        id,
        amount,
        reason as i64,
        Uint(reference),
        now
    ])?;
    let mut adjust = c.prepare_cached(
        "UPDATE wallets SET balance_cents = balance_cents + ?2 WHERE user_id = ?1",
    )?;
    if let Account::User(u) = from {
        adjust.execute(params![Uint(u), -amount])?;
    }
    if let Account::User(u) = to {
        adjust.execute(params![Uint(u), amount])?;
    }
    Ok(())
}

/// Credits `user` with `amount` cents from the system account; returns the new balance.
///
/// # Errors
/// [`StorageError::UnknownUser`]; database errors.
pub fn top_up(
    c: &Connection,
    user: UserId,
    amount: i64,
    initial: i64,
    now: i64,
) -> Result<i64, StorageError> {
    if crate::account::user_by_id(c, user)?.is_none() {
        return Err(StorageError::UnknownUser);
    }
    ensure(c, user, initial, now)?;
    transfer(
        c,
        Account::System,
        Account::User(user),
        amount,
        Reason::TopUp,
        0,
        now,
    )?;
    balance(c, user, 0)
}

/// The sum of an account's ledger rows (for checks: a user's equals its wallet's balance).
///
/// # Errors
/// Database errors.
pub fn ledger_sum(c: &Connection, account: Account) -> Result<i64, StorageError> {
    let (kind, id) = account.key();
    Ok(c.query_row(
        "SELECT COALESCE(SUM(amount_cents), 0) FROM wallet_ledger WHERE account_kind = ?1 AND account_id = ?2",
        params![kind, id],
        |r| r.get(0),
    )?)
}

/// The sum of the whole ledger (zero, always) and the number of its rows.
///
/// # Errors
/// Database errors.
pub fn ledger_total(c: &Connection) -> Result<(i64, u64), StorageError> {
    Ok(c.query_row(
        "SELECT COALESCE(SUM(amount_cents), 0), COUNT(*) FROM wallet_ledger",
        [],
        |r| Ok((r.get(0)?, crate::int::get_u64(r, 1)?)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut c).unwrap();
        c.execute(
            "INSERT INTO users(id, username, password_hash, salt, nickname, created_at_ms)
             VALUES (1, 'a', x'00', x'00', 'a', 0), (2, 'b', x'00', x'00', 'b', 0)",
            [],
        )
        .unwrap();
        c
    }

    #[test]
    fn movements_balance_to_zero_and_refuse_overdrafts() {
        let c = db();
        assert_eq!(
            balance(&c, 1, 500).unwrap(),
            500,
            "an untouched wallet shows the initial"
        );
        ensure(&c, 1, 500, 0).unwrap();
        ensure(&c, 1, 500, 0).unwrap();
        assert_eq!(balance(&c, 1, 0).unwrap(), 500, "credited once");
        assert_eq!(top_up(&c, 2, 250, 0, 0).unwrap(), 250);
        transfer(
            &c,
            Account::User(1),
            Account::User(2),
            100,
            Reason::TopUp,
            0,
            0,
        )
        .unwrap();
        let over = transfer(
            &c,
            Account::User(1),
            Account::User(2),
            401,
            Reason::TopUp,
            0,
            0,
        );
        assert!(matches!(
            over,
            Err(StorageError::InsufficientFunds { balance_cents: 400 })
        ));
        assert_eq!(balance(&c, 1, 0).unwrap(), 400);
        assert_eq!(balance(&c, 2, 0).unwrap(), 350);
        for u in [1, 2] {
            assert_eq!(
                ledger_sum(&c, Account::User(u)).unwrap(),
                balance(&c, u, 0).unwrap()
            );
        }
        assert_eq!(ledger_total(&c).unwrap(), (0, 6));
        assert!(matches!(
            top_up(&c, 9, 1, 0, 0),
            Err(StorageError::UnknownUser)
        ));
    }
}
