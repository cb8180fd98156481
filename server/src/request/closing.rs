//! CloseAccount (on the connection task: it answers, then closes every connection of the
//! user), and the upkeep that frees closed accounts' usernames after the retention period.
//! See ARCHITECTURE.md, "Closing an account".

use std::sync::Arc;
use std::time::Duration;

use feige_protocol::{frame, pb, Envelope, ErrorCode, PushKind, ResponseResult};
use feige_storage::closing;
use feige_storage::UserId;
use tokio_util::sync::CancellationToken;

use super::caller::{Conn, Flow, State};
use crate::account::verify_password;
use crate::error::RequestError;
use crate::twofactor::spend_code;
use crate::Shared;

/// Usernames freed per writer job.
const RELEASE_CHUNK: usize = 256;
/// The Kicked reason of a closed account's connections.
const REASON: &str = "the account was closed";
/// How often the usernames past their retention are looked for, at most.
const RELEASE_EVERY: Duration = Duration::from_secs(60);

/// Serves `CloseAccount`: checks the password (and a code while two-factor login is on),
/// closes the account, tells the friends (`user_updated` with `closed`), answers, then closes
/// every connection of the user with Kicked{ACCOUNT_CLOSED} (this one right after its answer:
/// a kick through its own switch could cut the answer off).
pub(crate) async fn close_account(conn: &mut Conn, rid: u64, r: pb::CloseAccount) -> Flow {
    let State::LoggedIn(login) = &conn.state else {
        return conn.not_logged_in(rid);
    };
    let user = login.user;
    let result = close(&conn.shared, user, r).await;
    let failed = result.is_err();
    conn.respond(rid, result);
    if failed {
        return Flow::Continue;
    }
    // The others are kicked; this one says goodbye after its answer and closes.
    let (shared, own) = (conn.shared.clone(), conn.conn_id);
    let mut kicked = 1;
    shared.sessions.for_each(user, |p| {
        if p.conn_id != own {
            shared.connections.note_reason(p.conn_id, REASON);
            p.control().kick(ErrorCode::AccountClosed);
            kicked += 1;
        }
    });
    conn.push_kicked(ErrorCode::AccountClosed, REASON.to_owned());
    conn.leave_sessions();
    conn.state = State::Greeted;
    tracing::info!(user, kicked, "account closed");
    Flow::Close
}

async fn close(
    shared: &Arc<Shared>,
    uid: UserId,
    r: pb::CloseAccount,
) -> Result<ResponseResult, RequestError> {
    let Some(user) = shared.store.user_by_id(uid).await? else {
        return Err(RequestError::new(
            ErrorCode::NotFound,
            "user no longer exists",
        ));
    };
    let (salt, hash, password) = (user.salt.clone(), user.password_hash.clone(), r.password);
    let right = tokio::task::spawn_blocking(move || verify_password(&salt, &hash, &password))
        .await
        .map_err(|_| RequestError::new(ErrorCode::Internal, "hashing worker failed"))?;
    if !right {
        return Err(RequestError::new(
            ErrorCode::BadCredentials,
            "wrong password",
        ));
    }
    if user.totp_enabled {
        spend_code(shared, uid, &r.code).await?;
    }
    // Before the commit: a login racing the closing either sees the set or is kicked after.
    shared.closed.insert(uid);
    let friends = match shared.writer.call(move |c| closing::close(c, uid)).await {
        Ok(Some(friends)) => friends,
        Ok(None) => {
            return Err(RequestError::new(
                ErrorCode::AccountClosed,
                "this account was closed",
            ))
        }
        Err(e) => {
            shared.closed.remove(&uid);
            return Err(e.into());
        }
    };
    let mut public = user;
    public.closed = true;
    public.avatar.clear();
    let push = PushKind::UserUpdated(crate::convert::public(&(&public).into()));
    let push = frame::encode_to_bytes(&Envelope::push(push));
    for friend in friends {
        shared.sessions.for_each(friend, |p| p.deliver(&push));
    }
    Ok(ResponseResult::CloseAccount(pb::Done {}))
}

/// Until `stop`: frees the usernames of accounts closed more than
/// `closed_username_retention_ms` ago (renamed `closed#<id>`, sessions deleted), every minute
/// or half the retention period when that is shorter.
pub(crate) async fn release_usernames(shared: Arc<Shared>, stop: CancellationToken) {
    let retention = shared.config.closed_username_retention_ms;
    let every = RELEASE_EVERY.min(Duration::from_millis((retention / 2).max(100)));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if shared.closed.is_empty() {
            continue;
        }
        let released = shared
            .writer
            .call(move |c| closing::release_usernames(c, retention, RELEASE_CHUNK))
            .await;
        match released {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "freed the usernames of closed accounts"),
            Err(e) => tracing::warn!(error = %e, "freeing closed accounts' usernames failed"),
        }
    }
}
