//! The method table's rows of two-factor login and closing an account (docs/sdk.md,
//! "Two-factor login and closing the account").

use serde_json::json;

use super::method::{answer, Method, Prepared, Serve};
use super::params::{ParamError, Params};
use super::render;
use crate::{pb, RequestKind as K};

const fn row(name: &'static str, f: fn(&Params) -> Result<Prepared, ParamError>) -> Method {
    Method {
        name,
        serve: Serve::Request(f),
    }
}

/// Two-factor login and closing the account.
pub(super) const METHODS: &[Method] = &[
    row("totp_setup", totp_setup),
    row("totp_enable", totp_enable),
    row("totp_disable", totp_disable),
    row("login_totp", login_totp),
    row("close_account", close_account),
];

/// `totp_setup`: `{}` → `{"otpauth_uri","secret"}`.
fn totp_setup(_: &Params) -> Result<Prepared, ParamError> {
    Ok(answer!(K::TotpSetup(pb::TotpSetup {}), TotpSetup(s) => render::totp_secret(&s)))
}

/// `totp_enable`: `{"code"}` → `{"recovery_codes":[...]}`.
fn totp_enable(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::TotpEnable {
        code: p.string("code")?,
    };
    Ok(answer!(K::TotpEnable(r), TotpEnable(c) => render::recovery_codes(&c)))
}

/// `totp_disable`: `{"code"}` (TOTP or recovery code) → `{}`.
fn totp_disable(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::TotpDisable {
        code: p.string("code")?,
    };
    Ok(answer!(K::TotpDisable(r), TotpDisable(_) => json!({})))
}

/// `login_totp`: `{"challenge","code"}` → the session, as `login`.
fn login_totp(p: &Params) -> Result<Prepared, ParamError> {
    Ok(answer!(K::LoginTotp(login_totp_request(p)?), LoginTotp(s) => render::session(&s)))
}

/// The `LoginTotp` of `login_totp`'s params.
///
/// # Errors
/// A missing or non-string `challenge` or `code`.
pub fn login_totp_request(p: &Params) -> Result<pb::LoginTotp, ParamError> {
    Ok(pb::LoginTotp {
        challenge: p.string("challenge")?,
        code: p.string("code")?,
    })
}

/// `close_account`: `{"password","code"?}` → `{}`.
fn close_account(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::CloseAccount {
        password: p.string("password")?,
        code: p.opt_string("code")?.unwrap_or_default(),
    };
    Ok(answer!(K::CloseAccount(r), CloseAccount(_) => json!({})))
}
