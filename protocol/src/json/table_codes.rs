//! The method table's verification codes: asking for a code, and logging in, resetting a
//! password and changing the e-mail or phone with one (`register` takes a code in `table`).

use serde_json::json;

use super::method::{answer, Method, Prepared, Serve};
use super::params::{ParamError, Params};
use super::render;
use crate::{pb, RequestKind as K};

/// Verification codes.
pub(super) const METHODS: &[Method] = &[
    row("request_code", request_code),
    row("login_code", login_code),
    row("reset_password", reset_password),
    row("change_contact", change_contact),
];

const fn row(name: &'static str, f: fn(&Params) -> Result<Prepared, ParamError>) -> Method {
    Method {
        name,
        serve: Serve::Request(f),
    }
}

/// `"channel"`: `"email"` or `"sms"`.
fn channel(p: &Params) -> Result<pb::CodeChannel, ParamError> {
    match p.string("channel")?.as_str() {
        "email" => Ok(pb::CodeChannel::Email),
        "sms" => Ok(pb::CodeChannel::Sms),
        _ => Err(ParamError::params(
            "\"channel\" must be \"email\" or \"sms\"",
        )),
    }
}

/// `"email"` or `"phone"`, exactly one: `(email, phone)` with the other empty.
///
/// # Errors
/// Neither or both.
pub fn email_or_phone(p: &Params) -> Result<(String, String), ParamError> {
    match (p.opt_string("email")?, p.opt_string("phone")?) {
        (Some(e), None) => Ok((e, String::new())),
        (None, Some(ph)) => Ok((String::new(), ph)),
        _ => Err(ParamError::params(
            "give exactly one of \"email\" and \"phone\"",
        )),
    }
}

/// `request_code`: `{"channel":"email"|"sms","to","purpose":"register"|"login"|"reset"|
/// "change"}` → `{"cooldown_s","expires_s"}`.
fn request_code(p: &Params) -> Result<Prepared, ParamError> {
    let purpose = match p.string("purpose")?.as_str() {
        "register" => pb::CodePurpose::Register,
        "login" => pb::CodePurpose::Login,
        "reset" => pb::CodePurpose::Reset,
        "change" => pb::CodePurpose::Change,
        _ => {
            return Err(ParamError::params(
                "\"purpose\" must be \"register\", \"login\", \"reset\" or \"change\"",
            ))
        }
    };
    let r = pb::RequestCode {
        channel: channel(p)? as i32,
        to: p.string("to")?,
        purpose: purpose as i32,
    };
    Ok(answer!(K::RequestCode(r), RequestCode(s) => {
        json!({ "cooldown_s": s.cooldown_s, "expires_s": s.expires_s })
    }))
}

/// `login_code`: `{"email" | "phone","code","device"?}` → the session, as `login`.
fn login_code(p: &Params) -> Result<Prepared, ParamError> {
    let (email, phone) = email_or_phone(p)?;
    let l = pb::LoginCode {
        email,
        phone,
        code: p.string("code")?,
        device: p.opt_string("device")?.unwrap_or_default(),
    };
    Ok(answer!(K::LoginCode(l), LoginCode(s) => render::session(&s)))
}

/// `reset_password`: `{"email" | "phone","code","new_password"}` → `{"sessions_revoked"}`.
fn reset_password(p: &Params) -> Result<Prepared, ParamError> {
    let (email, phone) = email_or_phone(p)?;
    let r = pb::ResetPassword {
        email,
        phone,
        code: p.string("code")?,
        new_password: p.string("new_password")?,
    };
    Ok(answer!(K::ResetPassword(r), ResetPassword(ok) => {
        json!({ "sessions_revoked": ok.sessions_revoked })
    }))
}

/// `change_contact`: `{"channel":"email"|"sms","to","code"}` → the profile.
fn change_contact(p: &Params) -> Result<Prepared, ParamError> {
    let r = pb::ChangeContact {
        channel: channel(p)? as i32,
        to: p.string("to")?,
        code: p.string("code")?,
    };
    Ok(answer!(K::ChangeContact(r), ChangeContact(pr) => render::profile(&pr)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(v: serde_json::Value) -> Params {
        Params::from_value(v).unwrap()
    }

    #[test]
    fn params_become_requests_and_bad_ones_are_refused() {
        let p = params(json!({ "channel": "sms", "to": "+1555", "purpose": "login" }));
        let K::RequestCode(r) = request_code(&p).unwrap().request else {
            panic!("not a RequestCode")
        };
        assert_eq!(r.channel, pb::CodeChannel::Sms as i32);
        assert_eq!(r.purpose, pb::CodePurpose::Login as i32);
        let bad = params(json!({ "channel": "fax", "to": "1", "purpose": "login" }));
        assert!(request_code(&bad).is_err());
        let both = params(json!({ "email": "a@b.c", "phone": "1", "code": "1" }));
        assert!(login_code(&both).is_err());
        let p = params(json!({ "phone": "+1555", "code": "123456" }));
        let K::LoginCode(l) = login_code(&p).unwrap().request else {
            panic!("not a LoginCode")
        };
        assert_eq!((l.email.as_str(), l.phone.as_str()), ("", "+1555"));
    }
}
