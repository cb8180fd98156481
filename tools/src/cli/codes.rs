//! Verification-code commands: `code` (ask for one), `register` and `login` with a code,
//! `reset-password`, `change-contact`.

use anyhow::Context;
use clap::{Args, ValueEnum};
use feige_client::{pb, Contact};
use feige_tools::{hex_encode, save_session, Failure, SavedSession};

use super::account::{new_password, password};
use super::{with_client, Ctx};

/// An e-mail address or a phone number (exactly one).
#[derive(Debug, Args)]
pub(crate) struct ContactArgs {
    /// The e-mail address.
    #[arg(long, conflicts_with = "phone")]
    pub email: Option<String>,
    /// The phone number.
    #[arg(long)]
    pub phone: Option<String>,
}

impl ContactArgs {
    /// The contact given, or `None` for neither.
    fn contact(&self) -> Option<Contact> {
        match (&self.email, &self.phone) {
            (Some(e), _) => Some(Contact::Email(e.clone())),
            (None, Some(p)) => Some(Contact::Phone(p.clone())),
            (None, None) => None,
        }
    }

    /// The contact given, or an `INVALID_ARGUMENT` failure naming `command`.
    fn required(&self, command: &str) -> anyhow::Result<Contact> {
        self.contact().ok_or_else(|| {
            Failure::new(
                "INVALID_ARGUMENT",
                format!("{command} needs --email ADDRESS or --phone NUMBER"),
            )
            .into()
        })
    }
}

/// `register` and `login` with a verification code.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub to: ContactArgs,
    /// The code `feige code` had sent to the e-mail or phone.
    #[arg(long)]
    pub code: Option<String>,
}

impl VerifyArgs {
    /// Whether any of --email, --phone, --code was given.
    pub(crate) fn given(&self) -> bool {
        self.to.contact().is_some() || self.code.is_some()
    }
}

/// What a code is for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Purpose {
    /// `feige register --email/--phone --code`.
    Register,
    /// `feige login --email/--phone --code`.
    Login,
    /// `feige reset-password`.
    Reset,
    /// `feige change-contact` (as the logged-in user).
    Change,
}

/// `feige code`: asks the server to send a code to an e-mail address or phone.
pub(crate) async fn request(ctx: &Ctx, to: &ContactArgs, purpose: Purpose) -> anyhow::Result<()> {
    let contact = to.required("code")?;
    let purpose = match purpose {
        Purpose::Register => pb::CodePurpose::Register,
        Purpose::Login => pb::CodePurpose::Login,
        Purpose::Reset => pb::CodePurpose::Reset,
        Purpose::Change => pb::CodePurpose::Change,
    };
    let sent = if purpose == pb::CodePurpose::Change {
        with_client(ctx, |c| async move {
            Ok(c.request_code(&contact, purpose).await?)
        })
        .await?
    } else {
        let (client, _events, _) = ctx.connect_fresh().await?;
        let result = client.request_code(&contact, purpose).await;
        client.close().await;
        result?
    };
    ctx.print(
        &serde_json::json!({
            "type": "code_sent",
            "cooldown_s": sent.cooldown_s,
            "expires_s": sent.expires_s,
        }),
        || {
            format!(
                "code sent; valid for {} s, another in {} s at the earliest",
                sent.expires_s, sent.cooldown_s
            )
        },
    );
    Ok(())
}

/// `feige register --email/--phone --code`: creates an account with a verified contact.
pub(crate) async fn register(
    ctx: &Ctx,
    username: &str,
    nickname: &Option<String>,
    verify: &VerifyArgs,
) -> anyhow::Result<()> {
    let contact = verify.to.required("register with --code")?;
    let code = verify.code.clone().unwrap_or_default();
    let password = password()?;
    let (client, _events, _) = ctx.connect_fresh().await?;
    let nickname = nickname.as_deref().unwrap_or(username);
    let result = client
        .register_verified(username, &password, nickname, &contact, &code)
        .await;
    client.close().await;
    let made = result?;
    let pending = made.pending;
    ctx.print(
        &serde_json::json!({
            "type": "registered",
            "user_id": made.user_id.to_string(),
            "username": username,
            "pending": pending,
        }),
        || {
            let wait = if pending {
                "; it waits for an admin's approval before it can log in"
            } else {
                ""
            };
            format!("registered {username} as user {}{wait}", made.user_id)
        },
    );
    Ok(())
}

/// `feige login --email/--phone --code`: logs in with a code and saves the session under the
/// account's username (a new phone's account has a generated one).
pub(crate) async fn login(ctx: &Ctx, verify: &VerifyArgs) -> anyhow::Result<()> {
    let contact = verify.to.required("login with --code")?;
    let code = verify
        .code
        .clone()
        .ok_or_else(|| Failure::new("INVALID_ARGUMENT", "login by code needs --code CODE"))?;
    let (client, _events, server) = ctx.connect_fresh().await?;
    let result = client.login_code(&contact, &code).await;
    client.close().await;
    let session = result?;
    let username = session
        .profile
        .as_ref()
        .map(|p| p.username.clone())
        .unwrap_or_default();
    let saved = SavedSession {
        server: server.clone(),
        username: username.clone(),
        user_id: session.user_id,
        token: hex_encode(&session.token),
        device: session.device.clone(),
    };
    save_session(&ctx.state_dir, &saved)
        .with_context(|| format!("cannot save the session in {}", ctx.state_dir.display()))?;
    ctx.print(
        &serde_json::json!({
            "type": "session",
            "user_id": session.user_id.to_string(),
            "username": username,
            "device": session.device,
            "server": server,
        }),
        || {
            format!(
                "logged in as {username} (user {}) on device {}",
                session.user_id, session.device
            )
        },
    );
    Ok(())
}

/// `feige reset-password`: a new password (FEIGE_NEW_PASSWORD, else stdin) with a code.
pub(crate) async fn reset_password(ctx: &Ctx, to: &ContactArgs, code: &str) -> anyhow::Result<()> {
    let contact = to.required("reset-password")?;
    let new = new_password()?;
    let (client, _events, _) = ctx.connect_fresh().await?;
    let result = client.reset_password(&contact, code, &new).await;
    client.close().await;
    let revoked = result?;
    ctx.print(
        &serde_json::json!({
            "type": "password_reset",
            "sessions_revoked": revoked.to_string(),
        }),
        || format!("password set; {revoked} session(s) ended: log in again"),
    );
    Ok(())
}

/// `feige change-contact`: the logged-in user's e-mail or phone, with the code sent to it.
pub(crate) async fn change_contact(ctx: &Ctx, to: &ContactArgs, code: &str) -> anyhow::Result<()> {
    let contact = to.required("change-contact")?;
    let code = code.to_owned();
    let p = with_client(ctx, |c| async move {
        Ok(c.change_contact(&contact, &code).await?)
    })
    .await?;
    ctx.out(&feige_tools::social::profile(&p));
    Ok(())
}
