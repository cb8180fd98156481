//! Two-factor login and closed accounts, the parts the request handlers share: TOTP codes
//! ([`totp`]), the pending login challenges ([`challenges`]), spending a code, and marking the
//! messages of closed accounts.

pub(crate) mod challenges;
pub(crate) mod totp;

use feige_protocol::{pb, ErrorCode};
use feige_storage::twofactor as store;
use feige_storage::{UserId, UserRecord};

use self::challenges::{Bound, IssueError};

pub(crate) use challenges::Challenges;

use crate::error::RequestError;
use crate::Shared;

/// Longest code accepted (a recovery code with spaces is 11–13 characters).
const MAX_CODE_LEN: usize = 64;

/// The current TOTP time step.
pub(crate) fn now_step() -> u64 {
    totp::step_of(u64::try_from(feige_storage::now_ms() / 1000).unwrap_or(0))
}

/// Checks `code` — a TOTP code or a recovery code — for `user` and spends it, so it cannot
/// be used again.
///
/// # Errors
/// `TOTP_INVALID` for a wrong, missing or used code; `INVALID_ARGUMENT` when two-factor login
/// is off or the code is too long; storage errors.
pub(crate) async fn spend_code(
    shared: &Shared,
    user: UserId,
    code: &str,
) -> Result<(), RequestError> {
    if code.len() > MAX_CODE_LEN {
        return Err(RequestError::invalid("code: too long"));
    }
    let state = shared.store.read(move |c| store::totp(c, user)).await?;
    let Some(state) = state.filter(|t| t.enabled) else {
        return Err(RequestError::invalid("two-factor login is off"));
    };
    if code.trim().is_empty() {
        return Err(RequestError::new(
            ErrorCode::TotpInvalid,
            "two-factor login is on: a TOTP or recovery code is required",
        ));
    }
    let spent = if totp::is_totp_code(code) {
        match totp::matching_step(&state.secret, code, now_step(), state.last_step) {
            Some(step) => {
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                shared
                    .writer
                    .call(move |c| store::spend_step(c, user, step))
                    .await?
            }
            None => false,
        }
    } else {
        let hash = totp::recovery_hash(code);
        shared
            .writer
            .call(move |c| store::spend_recovery(c, user, &hash))
            .await?
    };
    if spent {
        Ok(())
    } else {
        Err(RequestError::new(
            ErrorCode::TotpInvalid,
            "wrong code, or one that was used already",
        ))
    }
}

/// The answer to a right password of a user with two-factor login on: SECOND_FACTOR_REQUIRED
/// carrying a new challenge bound to the user and `device`.
pub(crate) fn second_factor(shared: &Shared, user: &UserRecord, device: String) -> RequestError {
    let bound = Bound {
        user: user.id,
        device,
    };
    match shared.challenges.issue(&shared.rng, bound) {
        Ok(challenge) => {
            tracing::info!(user = user.id, "password right; second factor required");
            RequestError {
                challenge,
                ..RequestError::new(
                    ErrorCode::SecondFactorRequired,
                    "two-factor login is on: answer the challenge with LoginTotp",
                )
            }
        }
        Err(IssueError::Full) => RequestError::new(
            ErrorCode::Busy,
            "too many logins wait for a second factor; try again later",
        ),
        Err(IssueError::Random) => RequestError::new(ErrorCode::Internal, "random source failed"),
    }
}

/// Sets `sender_closed` on the messages whose sender closed their account (an in-memory
/// set, loaded at start and added to by CloseAccount).
pub(crate) fn mark_closed(shared: &Shared, messages: &mut [pb::Message]) {
    if shared.closed.is_empty() {
        return;
    }
    for m in messages {
        m.sender_closed = shared.closed.contains(&m.from_user);
    }
}
