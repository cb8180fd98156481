//! Two-factor login: TotpSetup, TotpEnable and TotpDisable (on their own task), and
//! LoginTotp, which completes a password login answered SECOND_FACTOR_REQUIRED (on the
//! connection task, since it logs the connection in). See ARCHITECTURE.md, "Two-factor login".

use feige_protocol::{pb, ErrorCode, ResponseResult};
use feige_storage::twofactor as store;
use ring::rand::SecureRandom;
use tokio::time::Instant;

use super::account;
use super::caller::{Caller, Conn, Flow, Reply};
use crate::error::RequestError;
use crate::twofactor::{now_step, spend_code, totp};

/// Serves `LoginTotp`: answers a challenge with a TOTP or recovery code and opens the session
/// the password login would have opened.
pub(crate) async fn login_totp(conn: &mut Conn, rid: u64, r: pb::LoginTotp) -> Flow {
    if conn.logged_in() {
        let e = RequestError::new(
            ErrorCode::AlreadyLoggedIn,
            "this connection is already logged in",
        );
        conn.respond(rid, Err(e));
        return Flow::Continue;
    }
    let result = complete(conn, r).await;
    conn.shared.metrics.login(result.is_ok());
    account::answer_session(conn, rid, result.map(ResponseResult::LoginTotp))
}

async fn complete(conn: &mut Conn, r: pb::LoginTotp) -> Result<pb::Session, RequestError> {
    let invalid = || {
        RequestError::new(
            ErrorCode::ChallengeInvalid,
            "unknown, expired or used challenge, or too many wrong codes; log in again",
        )
    };
    let Some(bound) = conn.shared.challenges.attempt(&r.challenge) else {
        return Err(invalid());
    };
    let Some(user) = conn.shared.store.user_by_id(bound.user).await? else {
        return Err(invalid());
    };
    let (limits, ip) = (conn.shared.limits.clone(), conn.peer_addr.ip());
    if let Err(wait) = limits.login_allowed(&user.username, ip, Instant::now()) {
        return Err(RequestError::rate_limited(
            "too many failed logins; wait before trying again",
            wait,
        ));
    }
    if let Err(e) = spend_code(&conn.shared, user.id, &r.code).await {
        if e.code == ErrorCode::TotpInvalid {
            limits.login_failed(&user.username, ip, Instant::now());
            tracing::info!(user = user.id, addr = %ip, "wrong second factor");
        }
        return Err(e);
    }
    if !conn.shared.challenges.spend(&r.challenge) {
        return Err(invalid());
    }
    account::open_for(conn, user, bound.device).await
}

/// Serves `TotpSetup`: a new secret, waiting for its first code (TotpEnable).
pub(crate) async fn setup(me: Caller) -> Reply {
    let user = me
        .shared
        .store
        .user_by_id(me.user)
        .await?
        .ok_or_else(gone)?;
    let already_on = || RequestError::invalid("two-factor login is on; turn it off first");
    if user.totp_enabled {
        return Err(already_on());
    }
    let mut secret = [0u8; totp::SECRET_LEN];
    me.shared
        .rng
        .fill(&mut secret)
        .map_err(|_| RequestError::new(ErrorCode::Internal, "random source failed"))?;
    let uid = me.user;
    if !me
        .shared
        .writer
        .call(move |c| store::set_up(c, uid, &secret))
        .await?
    {
        return Err(already_on());
    }
    let b32 = totp::base32(&secret);
    Ok(ResponseResult::TotpSetup(pb::TotpSecret {
        otpauth_uri: totp::otpauth_uri(&user.username, &b32),
        secret: b32,
    }))
}

/// Serves `TotpEnable`: checks a first code of the secret TotpSetup made, turns two-factor
/// login on and answers ten new recovery codes (only their hashes are kept).
pub(crate) async fn enable(me: Caller, r: pb::TotpEnable) -> Reply {
    let uid = me.user;
    let state = me.shared.store.read(move |c| store::totp(c, uid)).await?;
    let Some(state) = state else {
        return Err(RequestError::invalid("no secret yet: call TotpSetup first"));
    };
    if state.enabled {
        return Err(RequestError::invalid("two-factor login is on already"));
    }
    let Some(step) = totp::matching_step(&state.secret, &r.code, now_step(), state.last_step)
    else {
        return Err(RequestError::new(
            ErrorCode::TotpInvalid,
            "wrong code for the secret of TotpSetup",
        ));
    };
    let mut codes = Vec::with_capacity(totp::RECOVERY_CODES);
    for _ in 0..totp::RECOVERY_CODES {
        let mut random = [0u8; 7];
        me.shared
            .rng
            .fill(&mut random)
            .map_err(|_| RequestError::new(ErrorCode::Internal, "random source failed"))?;
        codes.push(totp::recovery_code(&random));
    }
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| totp::recovery_hash(c)).collect();
    let (secret, step) = (state.secret, i64::try_from(step).unwrap_or(i64::MAX));
    let enabled = me
        .shared
        .writer
        .call(move |c| store::enable(c, uid, &secret, step, &hashes))
        .await?;
    if !enabled {
        return Err(RequestError::new(
            ErrorCode::TotpInvalid,
            "the secret changed meanwhile; set up again",
        ));
    }
    tracing::info!(user = uid, "two-factor login turned on");
    Ok(ResponseResult::TotpEnable(pb::RecoveryCodes { codes }))
}

/// Serves `TotpDisable`: with a TOTP or recovery code, turns two-factor login off.
pub(crate) async fn disable(me: Caller, r: pb::TotpDisable) -> Reply {
    spend_code(&me.shared, me.user, &r.code).await?;
    let uid = me.user;
    me.shared
        .writer
        .call(move |c| store::disable(c, uid))
        .await?;
    tracing::info!(user = uid, "two-factor login turned off");
    Ok(ResponseResult::TotpDisable(pb::Done {}))
}

fn gone() -> RequestError {
    RequestError::new(ErrorCode::NotFound, "user no longer exists")
}
