//! Account commands: register, login, whoami, logout, profile and sessions.

use std::io::{BufRead, Write};

use anyhow::Context;
use feige_client::{code_name, pb, ErrorCode};
use feige_tools::social::{self as out, Out};
use feige_tools::{
    check_username, hex_encode, remove_session, save_session, Failure, SavedSession,
};
use serde::Serialize;

use super::output::describe;
use super::{user_id, with_client, Ctx};
use crate::{ProfileCmd, SessionsCmd};

/// `feige register`: creates an account and prints its user id.
pub(crate) async fn register(
    ctx: &Ctx,
    username: &str,
    nickname: &Option<String>,
) -> anyhow::Result<()> {
    let password = password()?;
    let (client, _events, _) = ctx.connect_fresh().await?;
    let nickname = nickname.as_deref().unwrap_or(username);
    let result = client.create_account(username, &password, nickname).await;
    client.close().await;
    let made = result?;
    let (user_id, pending) = (made.user_id, made.pending);
    ctx.print(
        &Registered {
            kind: "registered",
            user_id: user_id.to_string(),
            username: username.to_owned(),
            pending,
        },
        || {
            let wait = if pending {
                "; it waits for an admin's approval before it can log in"
            } else {
                ""
            };
            format!("registered {username} as user {user_id}{wait}")
        },
    );
    Ok(())
}

/// `feige login`: logs in as --user and saves the session; with two-factor login on, with
/// the code of `--totp` (else FEIGE_TOTP, else a line of stdin).
pub(crate) async fn login(ctx: &Ctx, totp: Option<&str>) -> anyhow::Result<()> {
    let username = ctx
        .cli
        .user
        .clone()
        .ok_or_else(|| Failure::new("INVALID_ARGUMENT", "login needs --user NAME"))?;
    check_username(&username)?;
    let password = password()?;
    let (client, _events, server) = ctx.connect_fresh().await?;
    let result = login_with_factor(&client, &username, &password, totp).await;
    client.close().await;
    let session = result?;
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
        &LoggedIn {
            kind: "session",
            user_id: session.user_id.to_string(),
            username: username.clone(),
            device: session.device.clone(),
            server,
        },
        || {
            format!(
                "logged in as {username} (user {}) on device {}",
                session.user_id, session.device
            )
        },
    );
    Ok(())
}

/// `feige whoami`: prints the logged-in user's profile.
pub(crate) async fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let (client, _events, _) = ctx.resume(false).await?;
    let result = client.whoami().await;
    client.close().await;
    ctx.out(&out::profile(&result?));
    Ok(())
}

/// `feige logout`: revokes the saved session and deletes it.
pub(crate) async fn logout(ctx: &Ctx) -> anyhow::Result<()> {
    let username = ctx.username()?;
    match ctx.resume(false).await {
        Ok((client, _events, _)) => {
            let result = client.logout().await;
            client.close().await;
            result?;
        }
        // Already revoked on the server: forgetting it locally is all that is left.
        Err(e) if describe(&e).0 == code_name(ErrorCode::InvalidToken) => {}
        Err(e) => return Err(e),
    }
    remove_session(&ctx.state_dir, &username)
        .with_context(|| format!("cannot remove the session of {username}"))?;
    ctx.print(
        &LoggedOut {
            kind: "logged_out",
            username: username.clone(),
        },
        || format!("logged out {username}"),
    );
    Ok(())
}

/// `feige profile`: shows or changes the profile, shows another user's, or changes the
/// password.
pub(crate) async fn profile(ctx: &Ctx, action: Option<&ProfileCmd>) -> anyhow::Result<()> {
    match action.unwrap_or(&ProfileCmd::Show) {
        ProfileCmd::Show => whoami(ctx).await,
        ProfileCmd::Set {
            nickname,
            signature,
            avatar,
            phone,
            email,
        } => {
            let update = pb::UpdateProfile {
                nickname: nickname.clone(),
                signature: signature.clone(),
                avatar: avatar.clone(),
                phone: phone.clone(),
                email: email.clone(),
            };
            if update == pb::UpdateProfile::default() {
                return Err(Failure::new(
                    "INVALID_ARGUMENT",
                    "nothing to change: give --nickname, --signature, --avatar, --phone or --email",
                )
                .into());
            }
            let p =
                with_client(ctx, |c| async move { Ok(c.update_profile(update).await?) }).await?;
            ctx.out(&out::profile(&p));
            Ok(())
        }
        ProfileCmd::User { who } => {
            let u = with_client(ctx, |c| async move {
                let id = user_id(&c, who).await?;
                Ok(c.user(id).await?)
            })
            .await?;
            ctx.out(&out::user(&u));
            Ok(())
        }
        ProfileCmd::Password => {
            let old = password()?;
            let new = new_password()?;
            let revoked = with_client(
                ctx,
                |c| async move { Ok(c.change_password(&old, &new).await?) },
            )
            .await?;
            ctx.print(
                &serde_json::json!({
                    "type": "password_changed",
                    "sessions_revoked": revoked.to_string(),
                }),
                || format!("password changed; {revoked} other session(s) revoked"),
            );
            Ok(())
        }
    }
}

/// `feige sessions`: lists the sessions or revokes one.
pub(crate) async fn sessions(ctx: &Ctx, action: Option<&SessionsCmd>) -> anyhow::Result<()> {
    let action = action.unwrap_or(&SessionsCmd::List);
    let outs: Vec<Out> = with_client(ctx, |c| async move {
        Ok(match action {
            SessionsCmd::List => c.sessions().await?.iter().map(session_out).collect(),
            SessionsCmd::Revoke { session_id } => {
                c.revoke_session(*session_id).await?;
                vec![Out {
                    json: serde_json::json!({
                        "type": "session_revoked",
                        "session_id": session_id.to_string(),
                    }),
                    text: format!("session #{session_id} revoked"),
                }]
            }
        })
    })
    .await?;
    for o in &outs {
        ctx.out(o);
    }
    Ok(())
}

/// One session: `#3 phone  last seen 2026-11-24T04:30:00Z from 10.0.0.5:51234, expires
/// 2026-12-24T04:30:00Z (this one, online)`.
fn session_out(s: &pb::SessionInfo) -> Out {
    let time = |ms: u64| feige_tools::format_time(i64::try_from(ms).unwrap_or(i64::MAX));
    let mut marks = Vec::new();
    if s.current {
        marks.push("this one");
    }
    if s.online {
        marks.push("online");
    }
    let marks = if marks.is_empty() {
        String::new()
    } else {
        format!(" ({})", marks.join(", "))
    };
    Out {
        json: serde_json::json!({
            "type": "session",
            "session_id": s.session_id.to_string(),
            "device": s.device,
            "created_at": s.created_at_ms.to_string(),
            "last_seen": s.last_seen_ms.to_string(),
            "address": s.address,
            "expires_at": s.expires_at_ms.to_string(),
            "current": s.current,
            "online": s.online,
        }),
        text: format!(
            "#{} {}  last seen {} from {}, expires {}{marks}",
            s.session_id,
            s.device.escape_debug(),
            time(s.last_seen_ms),
            s.address,
            time(s.expires_at_ms)
        ),
    }
}

/// The password from FEIGE_PASSWORD, else one line of stdin.
pub(super) fn password() -> anyhow::Result<String> {
    secret("FEIGE_PASSWORD", "password")
}

/// The new password for `profile password` and `reset-password`: FEIGE_NEW_PASSWORD, else a line of stdin.
pub(super) fn new_password() -> anyhow::Result<String> {
    secret("FEIGE_NEW_PASSWORD", "new password")
}

/// `var` from the environment, else one line of stdin after a `what: ` prompt on stderr.
fn secret(var: &str, what: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(var) {
        return Ok(p);
    }
    eprint!("{what}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what}"))?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        return Err(Failure::new("INVALID_ARGUMENT", format!("no {what} given")).into());
    }
    Ok(p)
}

/// What `feige register --json` prints.
#[derive(Serialize)]
struct Registered {
    #[serde(rename = "type")]
    kind: &'static str,
    user_id: String,
    username: String,
    /// The server waits for an admin's approval of the account.
    pending: bool,
}

/// What `feige login --json` prints.
#[derive(Serialize)]
struct LoggedIn {
    #[serde(rename = "type")]
    kind: &'static str,
    user_id: String,
    username: String,
    device: String,
    server: String,
}

/// What `feige logout --json` prints.
#[derive(Serialize)]
struct LoggedOut {
    #[serde(rename = "type")]
    kind: &'static str,
    username: String,
}

/// A password login; when the account has two-factor login on, answers the challenge with
/// `totp` (else FEIGE_TOTP, else a line of stdin: a TOTP or recovery code).
async fn login_with_factor(
    client: &feige_client::Client,
    username: &str,
    password: &str,
    totp: Option<&str>,
) -> Result<feige_client::pb::Session, anyhow::Error> {
    match client.login(username, password).await {
        Err(e) if e.code() == Some(ErrorCode::SecondFactorRequired) => {
            let challenge = e.challenge().unwrap_or_default().to_owned();
            let code = match totp {
                Some(c) => c.to_owned(),
                None => secret("FEIGE_TOTP", "two-factor code (TOTP or recovery code)")?,
            };
            Ok(client.login_totp(&challenge, &code).await?)
        }
        other => Ok(other?),
    }
}
