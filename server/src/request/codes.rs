//! Verification codes and what they allow: RequestCode, Register with a verified e-mail or
//! phone, LoginCode (a phone no account has verified creates one), ResetPassword and
//! ChangeContact. The codes themselves (limits, hashing, senders) are `crate::verify`'s.
//!
//! All but ChangeContact are allowed before login and run on the connection task, in order;
//! a RequestCode waits for its sender there (at most `codes.send_timeout_ms`).

use feige_protocol::{pb, ErrorCode, PushKind, ResponseResult};
use feige_storage::social;
use feige_storage::verified::{self, ContactKind};
use feige_storage::UserRecord;
use ring::rand::SecureRandom;
use tokio::time::Instant;

use super::account::start_session;
use super::caller::{Caller, Conn, Flow, Reply, State};
use crate::account::hash_password;
use crate::config::Registration;
use crate::error::RequestError;
use crate::limits::AddrKey;
use crate::validate;
use crate::verify::book::CodeKey;
use crate::verify::config::RegistrationVerify;
use crate::verify::{normalize_phone, Channel, Purpose};
use crate::{convert, Shared};

/// Tries at a free generated username for a phone's new account.
const USERNAME_TRIES: usize = 4;

/// Serves `RequestCode`: checks what the purpose needs of the destination, then sends a code
/// (see `verify::service::Verify::send`).
pub(crate) async fn request_code(conn: &mut Conn, rid: u64, r: pb::RequestCode) -> Flow {
    let result = send_code(conn, r).await;
    conn.respond(rid, result);
    Flow::Continue
}

async fn send_code(conn: &Conn, r: pb::RequestCode) -> Reply {
    let channel = channel(r.channel)?;
    let purpose = match pb::CodePurpose::try_from(r.purpose) {
        Ok(pb::CodePurpose::Register) => Purpose::Register,
        Ok(pb::CodePurpose::Login) => Purpose::Login,
        Ok(pb::CodePurpose::Reset) => Purpose::Reset,
        Ok(pb::CodePurpose::Change) => Purpose::Change,
        _ => {
            return Err(RequestError::invalid(
                "purpose must be register, login, reset or change",
            ))
        }
    };
    let destination = destination(channel, &r.to)?;
    let owner = match (&conn.state, purpose) {
        (State::LoggedIn(l), Purpose::Change) => l.user,
        (_, Purpose::Change) => {
            return Err(RequestError::new(
                ErrorCode::NotLoggedIn,
                "a code to change your e-mail or phone needs a login",
            ))
        }
        _ => 0,
    };
    let holder = holder(&conn.shared, channel, &destination).await?;
    match (purpose, holder) {
        (Purpose::Register, Some(_)) => return Err(taken()),
        (Purpose::Change, Some(u)) if u.id != owner => return Err(taken()),
        (Purpose::Change, Some(_)) => {
            return Err(RequestError::invalid(
                "this is your verified address already",
            ))
        }
        (Purpose::Login, None) if !(channel == Channel::Sms && phone_signup(&conn.shared)) => {
            return Err(no_account(channel))
        }
        (Purpose::Reset, None) => return Err(no_account(channel)),
        _ => {}
    }
    let ip = conn.peer_addr.ip();
    let address = (!conn.shared.limits.trusted(ip)).then(|| AddrKey::of(ip));
    let key = CodeKey {
        purpose,
        owner,
        destination,
    };
    let sent = conn.shared.verify.send(key, channel, address).await?;
    tracing::info!(purpose = purpose.name(), addr = %ip, "verification code sent");
    let secs =
        |d: std::time::Duration| u32::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u32::MAX);
    Ok(ResponseResult::RequestCode(pb::CodeSent {
        cooldown_s: secs(sent.cooldown),
        expires_s: secs(sent.ttl),
    }))
}

/// Whether a Register goes through here: it names an e-mail, a phone or a code, or the
/// server requires a verified one (`registration_verify`).
pub(crate) fn wants_verified(config: &crate::Config, r: &pb::Register) -> bool {
    config.registration_verify != RegistrationVerify::None
        || !(r.email.trim().is_empty() && r.phone.trim().is_empty() && r.code.trim().is_empty())
}

/// Serves `Register` with a verified e-mail or phone (see [`wants_verified`]).
pub(crate) async fn register(conn: &mut Conn, rid: u64, r: pb::Register) -> Flow {
    let result = verified_user(conn, r).await;
    conn.respond(rid, result);
    Flow::Continue
}

async fn verified_user(conn: &Conn, r: pb::Register) -> Reply {
    let username = validate::username(&r.username)?;
    validate::new_password("password", &r.password)?;
    let nickname = if r.nickname.trim().is_empty() {
        username.clone()
    } else {
        validate::text(&validate::NICKNAME, &r.nickname)?
    };
    let required = conn.shared.config.registration_verify;
    if r.email.trim().is_empty() && r.phone.trim().is_empty() {
        let what = match required {
            RegistrationVerify::Phone => "a phone number",
            _ => "an e-mail address",
        };
        return Err(RequestError::new(
            ErrorCode::VerificationRequired,
            format!("this server requires {what} verified with a code to register"),
        ));
    }
    let (channel, to) = one_contact(&r.email, &r.phone)?;
    let wrong = match (required, channel) {
        (RegistrationVerify::Email, Channel::Sms) => Some("an e-mail address"),
        (RegistrationVerify::Phone, Channel::Email) => Some("a phone number"),
        _ => None,
    };
    if let Some(what) = wrong {
        return Err(RequestError::new(
            ErrorCode::VerificationRequired,
            format!("this server requires {what} verified with a code to register"),
        ));
    }
    if r.code.trim().is_empty() {
        return Err(RequestError::new(
            ErrorCode::VerificationRequired,
            "a code is needed: request one with purpose register",
        ));
    }
    let destination = destination(channel, to)?;
    rate_limit_registration(conn)?;
    if conn.shared.store.user_by_name(&username).await?.is_some() {
        return Err(RequestError::new(
            ErrorCode::UsernameTaken,
            "username already taken",
        ));
    }
    if holder(&conn.shared, channel, &destination).await?.is_some() {
        return Err(taken());
    }
    let key = CodeKey {
        purpose: Purpose::Register,
        owner: 0,
        destination: destination.clone(),
    };
    conn.shared.verify.redeem(&key, &r.code)?;
    let shared = conn.shared.clone();
    let iterations = shared.config.pbkdf2_iterations;
    let password = r.password;
    let (salt, hash) =
        tokio::task::spawn_blocking(move || hash_password(&shared.rng, iterations, &password))
            .await
            .map_err(|_| RequestError::new(ErrorCode::Internal, "hashing worker failed"))?
            .map_err(|_| RequestError::new(ErrorCode::Internal, "random source failed"))?;
    let pending = conn.shared.config.registration == Registration::Approval;
    let kind = contact_kind(channel);
    let user = conn
        .shared
        .writer
        .call(move |c| {
            verified::insert_verified_user(
                c,
                &username,
                &nickname,
                (&salt, &hash),
                pending,
                (kind, &destination),
            )
        })
        .await?;
    tracing::info!(user = user.id, username = %user.username, pending, "registered, verified");
    Ok(ResponseResult::Register(pb::RegisterOk {
        user_id: user.id,
        pending,
    }))
}

/// Serves `LoginCode`: as `Login`, with a code instead of a password.
pub(crate) async fn login_code(conn: &mut Conn, rid: u64, r: pb::LoginCode) -> Flow {
    if conn.logged_in() {
        let e = RequestError::new(
            ErrorCode::AlreadyLoggedIn,
            "this connection is already logged in",
        );
        conn.respond(rid, Err(e));
        return Flow::Continue;
    }
    let result = code_session(conn, r).await;
    conn.shared.metrics.login(result.is_ok());
    let close = matches!(&result, Err(e)
        if matches!(e.code, ErrorCode::TooManyConnections | ErrorCode::AddressBanned));
    conn.respond(rid, result.map(ResponseResult::LoginCode));
    if close {
        Flow::Close
    } else {
        Flow::Continue
    }
}

async fn code_session(conn: &mut Conn, r: pb::LoginCode) -> Result<pb::Session, RequestError> {
    let device = validate::device(&r.device)?;
    let (channel, to) = one_contact(&r.email, &r.phone)?;
    let destination = destination(channel, to)?;
    let key = CodeKey {
        purpose: Purpose::Login,
        owner: 0,
        destination: destination.clone(),
    };
    conn.shared.verify.redeem(&key, &r.code)?;
    let user = match holder(&conn.shared, channel, &destination).await? {
        Some(u) => u,
        None if channel == Channel::Sms && phone_signup(&conn.shared) => {
            phone_account(conn, destination).await?
        }
        None => return Err(no_account(channel)),
    };
    tracing::info!(user = user.id, "code login");
    start_session(conn, user, device).await
}

/// Creates the account of a phone no account has verified: a generated username, the
/// phone's last four digits as nickname, no password (one is set with ChangePassword or
/// ResetPassword).
async fn phone_account(conn: &Conn, phone: String) -> Result<UserRecord, RequestError> {
    rate_limit_registration(conn)?;
    let tail: String = phone
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let nickname = format!("User {tail}");
    let pending = conn.shared.config.registration == Registration::Approval;
    for _ in 0..USERNAME_TRIES {
        let mut b = [0u8; 8];
        conn.shared
            .rng
            .fill(&mut b)
            .map_err(|_| RequestError::new(ErrorCode::Internal, "random source failed"))?;
        let username = format!("u{:010}", u64::from_le_bytes(b) % 10_000_000_000);
        let (nick, phone) = (nickname.clone(), phone.clone());
        let made = conn
            .shared
            .writer
            .call(move |c| {
                verified::insert_verified_user(
                    c,
                    &username,
                    &nick,
                    (&[], &[]),
                    pending,
                    (ContactKind::Phone, &phone),
                )
            })
            .await;
        match made {
            Err(feige_storage::StorageError::UsernameTaken) => continue,
            Err(e) => return Err(e.into()),
            Ok(user) => {
                tracing::info!(user = user.id, username = %user.username, pending, "registered by phone");
                return Ok(user);
            }
        }
    }
    Err(RequestError::new(
        ErrorCode::Internal,
        "could not find a free username",
    ))
}

/// Serves `ResetPassword`: a new password with a code; every session of the account ends
/// (their connections get `Kicked{INVALID_TOKEN}`). Not on a logged-in connection (that
/// uses ChangePassword).
pub(crate) async fn reset_password(conn: &mut Conn, rid: u64, r: pb::ResetPassword) -> Flow {
    let result = if conn.logged_in() {
        Err(RequestError::new(
            ErrorCode::AlreadyLoggedIn,
            "log out first, or use change_password",
        ))
    } else {
        reset(conn, r).await
    };
    conn.respond(rid, result);
    Flow::Continue
}

async fn reset(conn: &Conn, r: pb::ResetPassword) -> Reply {
    validate::new_password("new password", &r.new_password)?;
    let (channel, to) = one_contact(&r.email, &r.phone)?;
    let destination = destination(channel, to)?;
    let key = CodeKey {
        purpose: Purpose::Reset,
        owner: 0,
        destination: destination.clone(),
    };
    conn.shared.verify.redeem(&key, &r.code)?;
    let Some(user) = holder(&conn.shared, channel, &destination).await? else {
        return Err(no_account(channel));
    };
    let shared = conn.shared.clone();
    let iterations = shared.config.pbkdf2_iterations;
    let password = r.new_password;
    let (salt, hash) =
        tokio::task::spawn_blocking(move || hash_password(&shared.rng, iterations, &password))
            .await
            .map_err(|_| RequestError::new(ErrorCode::Internal, "hashing worker failed"))?
            .map_err(|_| RequestError::new(ErrorCode::Internal, "random source failed"))?;
    let uid = user.id;
    // No token to keep: every session of the account is deleted.
    let revoked = conn
        .shared
        .writer
        .call(move |c| social::set_password(c, uid, &salt, &hash, &[]))
        .await?;
    conn.shared
        .sessions
        .for_each(uid, |p| p.control().kick(ErrorCode::InvalidToken));
    conn.shared.limits.login_succeeded(&user.username);
    tracing::info!(user = uid, revoked, "password reset with a code");
    Ok(ResponseResult::ResetPassword(pb::PasswordChanged {
        sessions_revoked: revoked,
    }))
}

/// Serves `ChangeContact`: the caller's e-mail or phone becomes `to`, verified by the code
/// sent there; the new profile is pushed to the caller's other connections.
pub(crate) async fn change_contact(me: Caller, r: pb::ChangeContact) -> Reply {
    let channel = channel(r.channel)?;
    let destination = destination(channel, &r.to)?;
    if holder(&me.shared, channel, &destination)
        .await?
        .is_some_and(|u| u.id != me.user)
    {
        return Err(taken());
    }
    let key = CodeKey {
        purpose: Purpose::Change,
        owner: me.user,
        destination: destination.clone(),
    };
    me.shared.verify.redeem(&key, &r.code)?;
    let (user, kind) = (me.user, contact_kind(channel));
    let _order = me.shared.presence.profile_order(user).await;
    let record = me
        .shared
        .writer
        .call(move |c| verified::set_contact(c, user, kind, &destination))
        .await?;
    let profile = convert::profile(&record);
    me.push(user, PushKind::ProfileUpdated(profile.clone()));
    tracing::info!(user, channel = ?channel, "contact changed with a code");
    Ok(ResponseResult::ChangeContact(profile))
}

fn channel(c: i32) -> Result<Channel, RequestError> {
    match pb::CodeChannel::try_from(c) {
        Ok(pb::CodeChannel::Email) => Ok(Channel::Email),
        Ok(pb::CodeChannel::Sms) => Ok(Channel::Sms),
        _ => Err(RequestError::invalid("channel must be email or sms")),
    }
}

fn contact_kind(c: Channel) -> ContactKind {
    match c {
        Channel::Email => ContactKind::Email,
        Channel::Sms => ContactKind::Phone,
    }
}

/// Exactly one of an e-mail and a phone.
fn one_contact<'a>(email: &'a str, phone: &'a str) -> Result<(Channel, &'a str), RequestError> {
    match (email.trim(), phone.trim()) {
        (e, "") if !e.is_empty() => Ok((Channel::Email, e)),
        ("", p) if !p.is_empty() => Ok((Channel::Sms, p)),
        _ => Err(RequestError::invalid("give exactly one of email and phone")),
    }
}

/// The destination as codes and accounts key it: a lower-case e-mail address, or a phone's
/// `+` and digits.
fn destination(channel: Channel, to: &str) -> Result<String, RequestError> {
    match channel {
        Channel::Email => match validate::email(to)? {
            e if e.is_empty() => Err(RequestError::invalid("an e-mail address is needed")),
            e => Ok(e.to_lowercase()),
        },
        Channel::Sms => normalize_phone(to).ok_or_else(|| {
            RequestError::invalid(
                "phone must be 5 to 20 digits (with spaces, '-', '(', ')' and a leading '+')",
            )
        }),
    }
}

/// The account that verified `destination`.
async fn holder(
    shared: &Shared,
    channel: Channel,
    destination: &str,
) -> Result<Option<UserRecord>, RequestError> {
    let (kind, value) = (contact_kind(channel), destination.to_owned());
    Ok(shared
        .store
        .read(move |c| verified::user_by_contact(c, kind, &value))
        .await?)
}

/// Whether a phone code login may create an account: not when registration requires an
/// e-mail.
fn phone_signup(shared: &Shared) -> bool {
    shared.config.registration_verify != RegistrationVerify::Email
}

fn rate_limit_registration(conn: &Conn) -> Result<(), RequestError> {
    let ip = conn.peer_addr.ip();
    conn.shared
        .limits
        .register(ip, Instant::now())
        .map_err(|wait| {
            tracing::info!(addr = %ip, "registration rate-limited");
            RequestError::rate_limited("too many registrations from this address", wait)
        })
}

fn taken() -> RequestError {
    RequestError::new(
        ErrorCode::ContactTaken,
        "another account has verified this e-mail address or phone number",
    )
}

fn no_account(channel: Channel) -> RequestError {
    let what = match channel {
        Channel::Email => "e-mail address",
        Channel::Sms => "phone number",
    };
    RequestError::new(
        ErrorCode::NotFound,
        format!("no account has verified this {what}"),
    )
}
