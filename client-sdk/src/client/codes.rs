//! Verification codes: asking for one, and what one allows (registering with a verified
//! e-mail or phone, logging in, resetting a password, changing the e-mail or phone).

use feige_protocol::{pb, RequestKind, ResponseResult};

use super::Client;
use crate::link::unexpected;
use crate::ClientError;

/// Where a code goes: an e-mail address or a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    /// An e-mail address (channel EMAIL).
    Email(String),
    /// A phone number (channel SMS).
    Phone(String),
}

impl Contact {
    fn channel(&self) -> pb::CodeChannel {
        match self {
            Contact::Email(_) => pb::CodeChannel::Email,
            Contact::Phone(_) => pb::CodeChannel::Sms,
        }
    }

    fn address(&self) -> &str {
        match self {
            Contact::Email(a) | Contact::Phone(a) => a,
        }
    }

    /// `(email, phone)` as the requests carry them: one set, the other empty.
    fn split(&self) -> (String, String) {
        match self {
            Contact::Email(a) => (a.clone(), String::new()),
            Contact::Phone(a) => (String::new(), a.clone()),
        }
    }
}

impl Client {
    /// Asks the server to send a 6-digit code to `to` for `purpose`; returns the cool-down
    /// and the code's lifetime. `CHANGE` needs a login.
    ///
    /// # Errors
    /// `CODE_COOLDOWN` and `CODE_RATE_LIMITED` (with `retry_after_ms`), `SENDER_FAILED`,
    /// `CONTACT_TAKEN` (register, change), `NOT_FOUND` (no account for login or reset),
    /// `INVALID_ARGUMENT`, or a connection error.
    pub async fn request_code(
        &self,
        to: &Contact,
        purpose: pb::CodePurpose,
    ) -> Result<pb::CodeSent, ClientError> {
        let r = pb::RequestCode {
            channel: to.channel() as i32,
            to: to.address().to_owned(),
            purpose: purpose as i32,
        };
        match self.call(RequestKind::RequestCode(r)).await? {
            ResponseResult::RequestCode(sent) => Ok(sent),
            other => Err(unexpected("RequestCode", &other)),
        }
    }

    /// Creates an account whose e-mail or phone `contact` is verified with `code` (from
    /// [`Client::request_code`] with purpose `REGISTER`).
    ///
    /// # Errors
    /// `CODE_INVALID`, `CODE_EXPIRED`, `CODE_ATTEMPTS_EXCEEDED`, `CONTACT_TAKEN`,
    /// `USERNAME_TAKEN`, `VERIFICATION_REQUIRED`, or a connection error.
    pub async fn register_verified(
        &self,
        username: &str,
        password: &str,
        nickname: &str,
        contact: &Contact,
        code: &str,
    ) -> Result<pb::RegisterOk, ClientError> {
        let (email, phone) = contact.split();
        let r = pb::Register {
            username: username.to_owned(),
            password: password.to_owned(),
            nickname: nickname.to_owned(),
            email,
            phone,
            code: code.to_owned(),
        };
        match self.call(RequestKind::Register(r)).await? {
            ResponseResult::Register(ok) => Ok(ok),
            other => Err(unexpected("Register", &other)),
        }
    }

    /// Logs in with a code (purpose `LOGIN`) sent to a verified e-mail or phone, as this
    /// config's device, and keeps the session as [`Client::login`] does; a phone no account
    /// has verified gets a new account.
    ///
    /// # Errors
    /// `CODE_INVALID`, `CODE_EXPIRED`, `CODE_ATTEMPTS_EXCEEDED`, `NOT_FOUND`,
    /// `ALREADY_LOGGED_IN`, `PENDING_APPROVAL`, or a connection error.
    pub async fn login_code(
        &self,
        contact: &Contact,
        code: &str,
    ) -> Result<pb::Session, ClientError> {
        let (email, phone) = contact.split();
        self.login_code_with(pb::LoginCode {
            email,
            phone,
            code: code.to_owned(),
            device: self.inner.config.device.clone(),
        })
        .await
    }

    pub(super) async fn login_code_with(
        &self,
        l: pb::LoginCode,
    ) -> Result<pb::Session, ClientError> {
        match self.call(RequestKind::LoginCode(l)).await? {
            ResponseResult::LoginCode(s) => {
                self.inner.on_logged_in(s.clone());
                Ok(s)
            }
            other => Err(unexpected("LoginCode", &other)),
        }
    }

    /// Sets a new password with a code (purpose `RESET`) sent to the account's verified
    /// e-mail or phone; every session of the account ends. Returns how many.
    ///
    /// # Errors
    /// `CODE_INVALID`, `CODE_EXPIRED`, `CODE_ATTEMPTS_EXCEEDED`, `NOT_FOUND`,
    /// `INVALID_ARGUMENT` (password too short), `ALREADY_LOGGED_IN`, or a connection error.
    pub async fn reset_password(
        &self,
        contact: &Contact,
        code: &str,
        new_password: &str,
    ) -> Result<u32, ClientError> {
        let (email, phone) = contact.split();
        let r = pb::ResetPassword {
            email,
            phone,
            code: code.to_owned(),
            new_password: new_password.to_owned(),
        };
        match self.call(RequestKind::ResetPassword(r)).await? {
            ResponseResult::ResetPassword(ok) => Ok(ok.sessions_revoked),
            other => Err(unexpected("ResetPassword", &other)),
        }
    }

    /// Replaces the user's e-mail or phone with `to`, verified by a code (purpose `CHANGE`)
    /// sent there; returns the new profile (also kept in the session).
    ///
    /// # Errors
    /// `CODE_INVALID`, `CODE_EXPIRED`, `CODE_ATTEMPTS_EXCEEDED`, `CONTACT_TAKEN`, or a
    /// connection error.
    pub async fn change_contact(
        &self,
        to: &Contact,
        code: &str,
    ) -> Result<pb::Profile, ClientError> {
        let r = pb::ChangeContact {
            channel: to.channel() as i32,
            to: to.address().to_owned(),
            code: code.to_owned(),
        };
        match self.call(RequestKind::ChangeContact(r)).await? {
            ResponseResult::ChangeContact(p) => {
                self.inner.set_profile(&p);
                Ok(p)
            }
            other => Err(unexpected("ChangeContact", &other)),
        }
    }
}
