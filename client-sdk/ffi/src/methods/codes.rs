//! The verification-code methods this SDK serves itself: `login_code`, which keeps the
//! session for reconnects as `login` does.

use feige_client::Contact;
use feige_protocol::json::email_or_phone;

use super::base::{call, Call, Conn, Method};
use crate::json::{self, Params, Refusal};

/// The custom handlers, by name (each also a row of the shared table).
pub(super) const METHODS: &[(&str, Method)] = &[("login_code", login_code)];

/// `login_code`: `{"email" | "phone","code"}` → the session; as this config's device, and
/// kept for reconnects (the client resumes it with its token).
fn login_code(p: &Params, conn: Conn) -> Result<Call, Refusal> {
    let contact = match email_or_phone(p)? {
        (email, phone) if phone.is_empty() => Contact::Email(email),
        (_, phone) => Contact::Phone(phone),
    };
    let code = p.string("code")?;
    call(async move {
        let session = conn.client().await?.login_code(&contact, &code).await?;
        Ok(json::session(&session))
    })
}
