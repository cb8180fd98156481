//! What admins do to users and connections: kick, disable, enable, approve, reset a password,
//! ban an address range. The HTTP admin API calls these; each closes the connections it must
//! with a `Kicked` push saying why.

use std::sync::Arc;

use dashmap::DashSet;
use feige_protocol::ErrorCode;
use feige_storage::admin::{self as store_admin, AccountChange, BanRecord};
use feige_storage::{StorageError, Store, UserId, UserRecord};

use crate::bans::{Bans, Cidr};
use crate::error::RequestError;
use crate::{account, validate, Shared};

/// The bans and the disabled users, read from the store at start.
///
/// # Errors
/// Database errors.
pub(crate) async fn load(store: &Store) -> Result<(Bans, DashSet<UserId>), StorageError> {
    let (bans, disabled) = store
        .read(|c| Ok((store_admin::list_bans(c)?, store_admin::disabled_users(c)?)))
        .await?;
    let list = bans
        .iter()
        .filter_map(|b| Cidr::parse(&b.cidr).ok())
        .collect();
    let set = Bans::default();
    set.set(list);
    Ok((set, disabled.into_iter().collect()))
}

/// Closes every connection of `user` with `code` and `reason`; returns how many.
pub(crate) fn kick_user(shared: &Shared, user: UserId, code: ErrorCode, reason: &str) -> usize {
    let mut kicked = 0;
    shared.sessions.for_each(user, |p| {
        shared.connections.note_reason(p.conn_id, reason);
        p.control().kick(code);
        kicked += 1;
    });
    kicked
}

/// Closes connection `conn_id` with `code` and `reason`; returns 1, or 0 when it is not
/// logged in.
pub(crate) fn kick_conn(shared: &Shared, conn_id: u64, code: ErrorCode, reason: &str) -> usize {
    usize::from(shared.connections.kick(conn_id, code, reason))
}

/// Disables, enables or approves `user`. A disabled user's connections are closed with
/// `ACCOUNT_DISABLED`; a login racing the change finds the user in [`Shared::disabled`].
///
/// # Errors
/// `NOT_FOUND` for an unknown user; storage errors.
pub(crate) async fn change_account(
    shared: &Arc<Shared>,
    user: UserId,
    change: AccountChange,
) -> Result<UserRecord, RequestError> {
    let was_disabled = shared.disabled.contains(&user);
    if change == AccountChange::Disable {
        shared.disabled.insert(user);
    }
    let result = shared
        .writer
        .call(move |c| store_admin::change_account(c, user, change))
        .await;
    let record = match result {
        Ok(r) => r,
        Err(e) => {
            if change == AccountChange::Disable && !was_disabled {
                shared.disabled.remove(&user);
            }
            return Err(e.into());
        }
    };
    match change {
        AccountChange::Disable => {
            let n = kick_user(
                shared,
                user,
                ErrorCode::AccountDisabled,
                "the account was disabled by an admin",
            );
            tracing::info!(user, kicked = n, "account disabled");
        }
        AccountChange::Enable => {
            shared.disabled.remove(&user);
            tracing::info!(user, "account enabled");
        }
        AccountChange::Approve => tracing::info!(user, "account approved"),
    }
    Ok(record)
}

/// Sets `user`'s password, deletes all of the user's sessions and closes their connections
/// (`INVALID_TOKEN`); returns how many sessions ended.
///
/// # Errors
/// `INVALID_ARGUMENT` for a password that breaks the rules, `NOT_FOUND` for an unknown user.
pub(crate) async fn reset_password(
    shared: &Arc<Shared>,
    user: UserId,
    password: String,
) -> Result<usize, RequestError> {
    validate::new_password("new_password", &password)?;
    let iterations = shared.config.pbkdf2_iterations;
    let hasher = shared.clone();
    let (salt, hash) = tokio::task::spawn_blocking(move || {
        account::hash_password(&hasher.rng, iterations, &password)
    })
    .await
    .map_err(|_| RequestError::new(ErrorCode::Internal, "hashing worker failed"))?
    .map_err(|_| RequestError::new(ErrorCode::Internal, "random source failed"))?;
    let ended = shared
        .writer
        .call(move |c| store_admin::reset_password(c, user, &salt, &hash))
        .await?;
    kick_user(
        shared,
        user,
        ErrorCode::InvalidToken,
        "the password was reset by an admin; log in again",
    );
    tracing::info!(user, sessions = ended, "password reset by an admin");
    Ok(ended)
}

/// Bans `cidr` and closes the connections from it (`ADDRESS_BANNED`); returns the ban and
/// how many connections were closed.
///
/// # Errors
/// `INVALID_ARGUMENT` for a malformed range or reason; storage errors.
pub(crate) async fn ban(
    shared: &Arc<Shared>,
    cidr: &str,
    reason: &str,
) -> Result<(BanRecord, usize), RequestError> {
    let range = Cidr::parse(cidr).map_err(RequestError::invalid)?;
    let reason = validate::text(&validate::BAN_REASON, reason)?;
    let key = range.to_string();
    let record = shared
        .writer
        .call(move |c| store_admin::add_ban(c, &key, &reason))
        .await?;
    shared.bans.add(range);
    let why = if record.reason.is_empty() {
        "this address is banned".to_owned()
    } else {
        format!("this address is banned: {}", record.reason)
    };
    let conns = shared.connections.matching(|a| range.contains(a.ip()));
    let closed = conns
        .into_iter()
        .filter(|id| shared.connections.kick(*id, ErrorCode::AddressBanned, &why))
        .count();
    tracing::info!(cidr = %range, closed, "address range banned");
    Ok((record, closed))
}

/// Lifts the ban of `cidr`; returns whether there was one.
///
/// # Errors
/// `INVALID_ARGUMENT` for a malformed range; storage errors.
pub(crate) async fn unban(shared: &Arc<Shared>, cidr: &str) -> Result<bool, RequestError> {
    let range = Cidr::parse(cidr).map_err(RequestError::invalid)?;
    let key = range.to_string();
    let removed = shared
        .writer
        .call(move |c| store_admin::remove_ban(c, &key))
        .await?;
    shared.bans.remove(range);
    tracing::info!(cidr = %range, removed, "address ban lifted");
    Ok(removed)
}
