//! The connection and its sessions: Hello, Ping, Register, Login, Resume, Logout and
//! RevokeSession run in order on the connection task, since they change its state, with hashing
//! and storage on blocking threads. ListSessions and the sessions' upkeep are in `sessions`.

use feige_protocol::{pb, ErrorCode, ResponseResult, PROTOCOL_MAJOR, PROTOCOL_MINOR};
use feige_storage::account::{self as store_account, Resumed};
use feige_storage::UserId;
use tokio::time::Instant;

use super::caller::{token_tag, Conn, Flow, Login, Reply, State};
use crate::account::{self, hash_password, token_hash, verify_password, TOKEN_LEN};
use crate::config::Registration;
use crate::connections::ConnInfo;
use crate::error::RequestError;
use crate::validate;

/// Serves `Hello`: checks the version, then an optional login or resume. Only the first
/// request may be a Hello.
pub(crate) async fn hello(conn: &mut Conn, rid: u64, h: pb::Hello) -> Flow {
    if !matches!(conn.state, State::Fresh) {
        let e = RequestError::new(
            ErrorCode::AlreadyLoggedIn,
            "Hello was already sent on this connection",
        );
        conn.respond(rid, Err(e));
        return Flow::Continue;
    }
    if h.major != PROTOCOL_MAJOR {
        let e = RequestError::new(
            ErrorCode::UnsupportedVersion,
            format!(
                "protocol major version {} is not supported; this server speaks {PROTOCOL_MAJOR}",
                h.major
            ),
        );
        conn.respond(rid, Err(e));
        return Flow::Close;
    }
    conn.state = State::Greeted;
    let session = match h.auth {
        None => None,
        Some(pb::hello::Auth::Login(l)) => match open_session(conn, l).await {
            Ok(s) => Some(s),
            Err(e) => return answer_session(conn, rid, Err(e)),
        },
        Some(pb::hello::Auth::Resume(r)) => match resume_session(conn, r).await {
            Ok(s) => Some(s),
            Err(e) => return answer_session(conn, rid, Err(e)),
        },
    };
    let config = &conn.shared.config;
    let ok = pb::HelloOk {
        major: PROTOCOL_MAJOR,
        minor: PROTOCOL_MINOR,
        server: format!("feige/{}", env!("CARGO_PKG_VERSION")),
        heartbeat_ms: u32::try_from(config.heartbeat_ms).unwrap_or(u32::MAX),
        max_frame_len: config.max_frame_len as u32,
        session,
    };
    conn.respond(rid, Ok(ResponseResult::Hello(ok)));
    Flow::Continue
}

/// Serves `Ping`: answers `Pong` with the same nonce.
pub(crate) fn ping(conn: &mut Conn, rid: u64, p: pb::Ping) -> Flow {
    conn.respond(rid, Ok(ResponseResult::Pong(pb::Pong { nonce: p.nonce })));
    Flow::Continue
}

/// Serves `Register`: validates, hashes the password off the reactor, stores the user.
pub(crate) async fn register(conn: &mut Conn, rid: u64, r: pb::Register) -> Flow {
    let result = new_user(conn, r).await;
    conn.respond(rid, result);
    Flow::Continue
}

async fn new_user(conn: &Conn, r: pb::Register) -> Reply {
    let username = validate::username(&r.username)?;
    validate::new_password("password", &r.password)?;
    // No nickname: the username stands in for it.
    let nickname = if r.nickname.trim().is_empty() {
        username.clone()
    } else {
        validate::text(&validate::NICKNAME, &r.nickname)?
    };
    let ip = conn.peer_addr.ip();
    if let Err(wait) = conn.shared.limits.register(ip, Instant::now()) {
        tracing::info!(addr = %ip, "registration rate-limited");
        return Err(RequestError::rate_limited(
            "too many registrations from this address",
            wait,
        ));
    }
    if conn.shared.store.user_by_name(&username).await?.is_some() {
        return Err(RequestError::new(
            ErrorCode::UsernameTaken,
            "username already taken",
        ));
    }
    let shared = conn.shared.clone();
    let iterations = shared.config.pbkdf2_iterations;
    let password = r.password;
    let (salt, hash) =
        tokio::task::spawn_blocking(move || hash_password(&shared.rng, iterations, &password))
            .await
            .map_err(|_| RequestError::new(ErrorCode::Internal, "hashing worker failed"))?
            .map_err(|_| RequestError::new(ErrorCode::Internal, "random source failed"))?;
    let pending = conn.shared.config.registration == Registration::Approval;
    let user = conn
        .shared
        .writer
        .call(move |c| {
            store_account::insert_user_with(c, &username, &nickname, (&salt, &hash), pending)
        })
        .await?;
    tracing::info!(user = user.id, username = %user.username, pending, "registered");
    Ok(ResponseResult::Register(pb::RegisterOk {
        user_id: user.id,
        pending,
    }))
}

/// Serves `Login` after Hello (a login inside Hello is answered by [`hello`]).
pub(crate) async fn login(conn: &mut Conn, rid: u64, l: pb::Login) -> Flow {
    if conn.logged_in() {
        return already_logged_in(conn, rid);
    }
    let result = open_session(conn, l).await;
    answer_session(conn, rid, result.map(ResponseResult::Session))
}

/// Serves `Resume` after Hello (a resume inside Hello is answered by [`hello`]).
pub(crate) async fn resume(conn: &mut Conn, rid: u64, r: pb::Resume) -> Flow {
    if conn.logged_in() {
        return already_logged_in(conn, rid);
    }
    let result = resume_session(conn, r).await;
    answer_session(conn, rid, result.map(ResponseResult::Session))
}

fn already_logged_in(conn: &mut Conn, rid: u64) -> Flow {
    let e = RequestError::new(
        ErrorCode::AlreadyLoggedIn,
        "this connection is already logged in",
    );
    conn.respond(rid, Err(e));
    Flow::Continue
}

/// Checks the password and opens a session for this device. While the account or the
/// address is locked after failed passwords, refuses without checking; an unknown name is
/// verified against a dummy hash, so it takes as long as a known one.
async fn open_session(conn: &mut Conn, l: pb::Login) -> Result<pb::Session, RequestError> {
    let result = check_password(conn, l).await;
    conn.shared.metrics.login(result.is_ok());
    result
}

/// [`open_session`] before it is counted.
async fn check_password(conn: &mut Conn, l: pb::Login) -> Result<pb::Session, RequestError> {
    let device = validate::device(&l.device)?;
    let ip = conn.peer_addr.ip();
    let name = l.username.trim().to_owned();
    let limits = conn.shared.limits.clone();
    if let Err(wait) = limits.login_allowed(&name, ip, Instant::now()) {
        return Err(RequestError::rate_limited(
            "too many failed logins; wait before trying again",
            wait,
        ));
    }
    let user = conn.shared.store.user_by_name(&name).await?;
    let password = l.password;
    let shared = conn.shared.clone();
    let (ok, user) = tokio::task::spawn_blocking(move || match user {
        Some(u) => (
            verify_password(&u.salt, &u.password_hash, &password),
            Some(u),
        ),
        None => {
            let (salt, hash) = &shared.dummy_hash;
            let _ = verify_password(salt, hash, &password);
            (false, None)
        }
    })
    .await
    .map_err(|_| RequestError::new(ErrorCode::Internal, "hashing worker failed"))?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            limits.login_failed(&name, ip, Instant::now());
            tracing::info!(username = ?name, addr = %ip, "failed login");
            return Err(RequestError::new(
                ErrorCode::BadCredentials,
                "wrong username or password",
            ));
        }
    };
    limits.login_succeeded(&name);
    start_session(conn, user, device).await
}

/// Opens a session for `user`, whose credentials were checked (a password here, a code in
/// `codes`): refused for a disabled or pending account and past the connection cap; the
/// token is stored, then the connection enters the session map.
pub(crate) async fn start_session(
    conn: &mut Conn,
    user: feige_storage::UserRecord,
    device: String,
) -> Result<pb::Session, RequestError> {
    check_account(&user)?;
    if user.totp_enabled {
        return Err(crate::twofactor::second_factor(&conn.shared, &user, device));
    }
    open_for(conn, user, device).await
}

/// Opens a session of `user` on `device` once the password (and the second factor, when on)
/// is checked: a new token, its session row, and this connection logged in.
pub(super) async fn open_for(
    conn: &mut Conn,
    user: feige_storage::UserRecord,
    device: String,
) -> Result<pb::Session, RequestError> {
    check_account(&user)?;
    check_user_connections(conn, user.id)?;
    let token = account::new_token(&conn.shared.rng)
        .map_err(|_| RequestError::new(ErrorCode::Internal, "random source failed"))?;
    let hash = token_hash(&token);
    let (uid, dev, h) = (user.id, device.clone(), hash.clone());
    let (addr, ttl) = (
        conn.peer_addr.to_string(),
        conn.shared.config.session_ttl_ms(),
    );
    let stored = conn
        .shared
        .writer
        .call(move |c| store_account::insert_session(c, &h, uid, &dev, &addr, ttl))
        .await?;
    if let Err(e) = enter(conn, user.id, device.clone(), hash.clone()) {
        // A concurrent login took the last place: the new token goes unused.
        let _ = conn
            .shared
            .writer
            .call(move |c| store_account::delete_session(c, &hash))
            .await;
        return Err(e);
    }
    tracing::info!(user = user.id, ?device, addr = %conn.peer_addr, "logged in");
    Ok(pb::Session {
        user_id: user.id,
        token: token.to_vec().into(),
        profile: Some(crate::convert::profile(&user)),
        device,
        session_id: stored.id,
        expires_at_ms: stored.expires_at_ms.max(0) as u64,
    })
}

/// Accepts a live token on a new connection.
async fn resume_session(conn: &mut Conn, r: pb::Resume) -> Result<pb::Session, RequestError> {
    let result = check_token(conn, r).await;
    conn.shared.metrics.login(result.is_ok());
    result
}

/// [`resume_session`] before it is counted.
async fn check_token(conn: &mut Conn, r: pb::Resume) -> Result<pb::Session, RequestError> {
    // An expired session is deleted within a minute; then it is unknown like a revoked one.
    let invalid = || {
        RequestError::new(
            ErrorCode::InvalidToken,
            "invalid, revoked or expired session token",
        )
    };
    if r.token.len() != TOKEN_LEN {
        return Err(invalid());
    }
    let hash = token_hash(&r.token);
    let (h, addr, ttl) = (
        hash.clone(),
        conn.peer_addr.to_string(),
        conn.shared.config.session_ttl_ms(),
    );
    let session = match conn
        .shared
        .writer
        .call(move |c| store_account::resume_session(c, &h, &addr, ttl))
        .await?
    {
        Resumed::Live(s) => s,
        Resumed::Expired => {
            return Err(RequestError::new(
                ErrorCode::InvalidToken,
                "session expired; log in again",
            ))
        }
        Resumed::Unknown => return Err(invalid()),
    };
    let Some(user) = conn.shared.store.user_by_id(session.user_id).await? else {
        return Err(invalid());
    };
    check_account(&user)?;
    check_user_connections(conn, user.id)?;
    // The device name is fixed at login; a resume may not rename it.
    let device = session.device;
    enter(conn, user.id, device.clone(), hash)?;
    tracing::info!(user = user.id, ?device, addr = %conn.peer_addr, "resumed");
    Ok(pb::Session {
        user_id: user.id,
        token: r.token,
        profile: Some(crate::convert::profile(&user)),
        device,
        session_id: session.id,
        expires_at_ms: session.expires_at_ms.max(0) as u64,
    })
}

/// Serves `Logout`: revokes the token and closes the other connections that use it.
pub(crate) async fn logout(conn: &mut Conn, rid: u64) -> Flow {
    let State::LoggedIn(login) = &conn.state else {
        return conn.not_logged_in(rid);
    };
    let login = login.clone();
    let result = end_session(conn, &login).await;
    conn.respond(rid, result);
    Flow::Continue
}

async fn end_session(conn: &mut Conn, login: &Login) -> Reply {
    let hash = login.token_hash.clone();
    conn.shared
        .writer
        .call(move |c| store_account::delete_session(c, &hash))
        .await?;
    conn.leave_sessions();
    let tag = token_tag(&login.token_hash);
    conn.shared.sessions.for_each(login.user, |p| {
        if p.token_tag == tag {
            p.control().kick(ErrorCode::InvalidToken);
        }
    });
    conn.state = State::Greeted;
    tracing::info!(user = login.user, "logged out");
    Ok(ResponseResult::Logout(pb::LogoutOk {}))
}

/// Refuses a login or resume of a closed or disabled account, or one that waits for approval.
fn check_account(user: &feige_storage::UserRecord) -> Result<(), RequestError> {
    if user.closed {
        return Err(RequestError::new(
            ErrorCode::AccountClosed,
            "this account was closed",
        ));
    }
    if user.disabled {
        return Err(RequestError::new(
            ErrorCode::AccountDisabled,
            "this account is disabled",
        ));
    }
    if user.pending {
        return Err(RequestError::new(
            ErrorCode::PendingApproval,
            "this account waits for an admin's approval",
        ));
    }
    Ok(())
}

/// Refuses a login or resume early when `user` already holds `max_connections_per_user`
/// logged-in connections (`enter` checks again, atomically).
fn check_user_connections(conn: &Conn, user: u64) -> Result<(), RequestError> {
    let mut current = 0;
    conn.shared.sessions.for_each(user, |_| current += 1);
    if conn
        .shared
        .limits
        .user_connection_allowed(conn.peer_addr.ip(), current)
    {
        return Ok(());
    }
    Err(too_many_connections(user, current))
}

fn too_many_connections(user: u64, current: usize) -> RequestError {
    tracing::info!(
        user,
        current,
        "login refused: too many connections of this user"
    );
    RequestError::new(
        ErrorCode::TooManyConnections,
        "too many connections of this user; close one first",
    )
}

/// Answers a login or resume; after a refusal for too many connections or a banned address,
/// closes.
pub(super) fn answer_session(conn: &mut Conn, rid: u64, result: Reply) -> Flow {
    let close = matches!(&result, Err(e)
        if matches!(e.code, ErrorCode::TooManyConnections | ErrorCode::AddressBanned));
    conn.respond(rid, result);
    if close {
        Flow::Close
    } else {
        Flow::Continue
    }
}

/// Marks the connection logged in and registers it for routing; the user's friends hear
/// when it is the user's first. Refused when the user holds `max_connections_per_user`
/// connections: counted and added in one step, so racing logins cannot both pass the cap.
fn enter(
    conn: &mut Conn,
    user: u64,
    device: String,
    token_hash: Vec<u8>,
) -> Result<(), RequestError> {
    if conn.shared.bans.is_banned(conn.peer_addr.ip()) {
        return Err(RequestError::new(
            ErrorCode::AddressBanned,
            "connections from this address are banned",
        ));
    }
    let peer = conn.peer(token_tag(&token_hash));
    let (limits, ip) = (&conn.shared.limits, conn.peer_addr.ip());
    let mut held = 0;
    let added = conn.shared.sessions.add_if(user, peer, |current| {
        held = current;
        limits.user_connection_allowed(ip, current)
    });
    match added {
        None => return Err(too_many_connections(user, held)),
        Some(true) => crate::presence::changed(&conn.shared, user),
        Some(false) => {}
    }
    // After the add: an admin's disable (or the user's closing) either sees this connection
    // or is seen here.
    let refused = if conn.shared.closed.contains(&user) {
        Some((ErrorCode::AccountClosed, "this account was closed"))
    } else if conn.shared.disabled.contains(&user) {
        Some((ErrorCode::AccountDisabled, "this account is disabled"))
    } else {
        None
    };
    if let Some((code, text)) = refused {
        if conn.shared.sessions.remove(user, conn.conn_id) {
            crate::presence::changed(&conn.shared, user);
        }
        return Err(RequestError::new(code, text));
    }
    conn.shared.connections.insert(
        conn.conn_id,
        ConnInfo {
            user,
            device: device.clone(),
            addr: conn.peer_addr,
            since_ms: feige_storage::now_ms(),
            transport: conn.transport,
            outbox: conn.tx.clone(),
        },
    );
    conn.state = State::LoggedIn(Login {
        user,
        device,
        token_hash,
    });
    Ok(())
}

/// Serves `RevokeSession`: deletes one of the caller's sessions and closes its connections
/// with Kicked(INVALID_TOKEN); the caller's own session logs this connection out instead (as
/// `Logout`).
pub(crate) async fn revoke_session(conn: &mut Conn, rid: u64, r: pb::RevokeSession) -> Flow {
    let State::LoggedIn(login) = &conn.state else {
        return conn.not_logged_in(rid);
    };
    let (user, own) = (login.user, login.token_hash.clone());
    let result = revoke(conn, user, &own, r.session_id).await;
    conn.respond(rid, result);
    Flow::Continue
}

async fn revoke(conn: &mut Conn, user: UserId, own: &[u8], id: u64) -> Reply {
    let Some(hash) = conn
        .shared
        .writer
        .call(move |c| store_account::revoke_session(c, user, id))
        .await?
    else {
        return Err(RequestError::new(
            ErrorCode::NotFound,
            "no such session of yours",
        ));
    };
    let tag = token_tag(&hash);
    if hash == own {
        conn.leave_sessions();
        conn.state = State::Greeted;
    }
    let conn_id = conn.conn_id;
    conn.shared.sessions.for_each(user, |p| {
        if p.token_tag == tag && p.conn_id != conn_id {
            p.control().kick(ErrorCode::InvalidToken);
        }
    });
    tracing::info!(user, session = id, "session revoked");
    Ok(ResponseResult::RevokeSession(pb::Done {}))
}
