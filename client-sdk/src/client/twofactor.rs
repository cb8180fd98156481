//! Two-factor login (TOTP) and closing the account. A password login of a user with
//! two-factor login on fails with `SECOND_FACTOR_REQUIRED` and a challenge
//! ([`ClientError::challenge`]); [`Client::login_totp`] completes it.

use feige_protocol::{pb, RequestKind, ResponseResult};

use super::Client;
use crate::link::unexpected;
use crate::ClientError;

impl Client {
    /// Makes a new TOTP secret (replacing one not yet enabled): its `otpauth://` URI, for an
    /// authenticator app, and the secret in base32.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` while two-factor login is on, or a connection error.
    pub async fn totp_setup(&self) -> Result<pb::TotpSecret, ClientError> {
        match self.call(RequestKind::TotpSetup(pb::TotpSetup {})).await? {
            ResponseResult::TotpSetup(s) => Ok(s),
            other => Err(unexpected("TotpSetup", &other)),
        }
    }

    /// Turns two-factor login on with a first code of the secret of [`Client::totp_setup`];
    /// returns the ten one-time recovery codes (shown once: the server keeps only hashes).
    ///
    /// # Errors
    /// `TOTP_INVALID` (wrong code), `INVALID_ARGUMENT` (no secret set up, or already on), or
    /// a connection error.
    pub async fn totp_enable(&self, code: &str) -> Result<Vec<String>, ClientError> {
        let r = pb::TotpEnable {
            code: code.to_owned(),
        };
        match self.call(RequestKind::TotpEnable(r)).await? {
            ResponseResult::TotpEnable(c) => Ok(c.codes),
            other => Err(unexpected("TotpEnable", &other)),
        }
    }

    /// Turns two-factor login off with a TOTP code or a recovery code.
    ///
    /// # Errors
    /// `TOTP_INVALID` (wrong or used code), `INVALID_ARGUMENT` (it is off), or a connection
    /// error.
    pub async fn totp_disable(&self, code: &str) -> Result<(), ClientError> {
        let r = pb::TotpDisable {
            code: code.to_owned(),
        };
        match self.call(RequestKind::TotpDisable(r)).await? {
            ResponseResult::TotpDisable(_) => Ok(()),
            other => Err(unexpected("TotpDisable", &other)),
        }
    }

    /// Completes a password login that failed with `SECOND_FACTOR_REQUIRED`: `challenge`
    /// from that error, `code` a TOTP code or a recovery code. Then as [`Client::login`]: the
    /// session is kept, resumed after a reconnect, and synced.
    ///
    /// # Errors
    /// `TOTP_INVALID` (wrong or used code; the challenge allows a few tries),
    /// `CHALLENGE_INVALID` (unknown, expired, used, or out of tries: log in again), or a
    /// connection error.
    pub async fn login_totp(
        &self,
        challenge: &str,
        code: &str,
    ) -> Result<pb::Session, ClientError> {
        self.login_totp_with(pb::LoginTotp {
            challenge: challenge.to_owned(),
            code: code.to_owned(),
        })
        .await
    }

    pub(super) async fn login_totp_with(
        &self,
        r: pb::LoginTotp,
    ) -> Result<pb::Session, ClientError> {
        match self.call(RequestKind::LoginTotp(r)).await? {
            ResponseResult::LoginTotp(s) => {
                self.inner.on_logged_in(s.clone());
                Ok(s)
            }
            other => Err(unexpected("LoginTotp", &other)),
        }
    }

    /// Closes the account: `password`, and a TOTP or recovery `code` while two-factor login
    /// is on. The server then closes every connection of the user (`ACCOUNT_CLOSED`); this
    /// client forgets its session and does not reconnect.
    ///
    /// # Errors
    /// `BAD_CREDENTIALS` (wrong password), `TOTP_INVALID` (missing, wrong or used code), or
    /// a connection error.
    pub async fn close_account(
        &self,
        password: &str,
        code: Option<&str>,
    ) -> Result<(), ClientError> {
        let r = pb::CloseAccount {
            password: password.to_owned(),
            code: code.unwrap_or_default().to_owned(),
        };
        match self.call(RequestKind::CloseAccount(r)).await? {
            ResponseResult::CloseAccount(_) => {
                self.inner.forget_session();
                Ok(())
            }
            other => Err(unexpected("CloseAccount", &other)),
        }
    }
}
