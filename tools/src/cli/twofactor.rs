//! `feige 2fa setup|enable|disable`, the second factor of `feige login`, and
//! `feige close-account`.

use feige_client::ClientError;
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use serde_json::json;

use super::account::password;
use super::{with_client, Ctx};
use crate::TwoFactorCmd;

/// `feige 2fa ...`.
pub(crate) async fn two_factor(ctx: &Ctx, action: &TwoFactorCmd) -> anyhow::Result<()> {
    match action {
        TwoFactorCmd::Setup => {
            let s = with_client(ctx, |c| async move { Ok(c.totp_setup().await?) }).await?;
            let qr = QrCode::new(s.otpauth_uri.as_bytes())
                .map(|q| q.render::<Dense1x2>().quiet_zone(true).build())
                .unwrap_or_default();
            let value =
                json!({ "type": "totp_setup", "otpauth_uri": s.otpauth_uri, "secret": s.secret });
            lines(ctx, &value, &format!(
                "{qr}\nScan this with an authenticator app, or enter the secret {}\n{}\nThen run `feige 2fa enable CODE`.",
                s.secret, s.otpauth_uri
            ));
        }
        TwoFactorCmd::Enable { code } => {
            let code = code.clone();
            let codes =
                with_client(ctx, |c| async move { Ok(c.totp_enable(&code).await?) }).await?;
            let text = format!(
                "two-factor login is on. Recovery codes (each works once; keep them safe):\n{}",
                codes.join("\n")
            );
            lines(
                ctx,
                &json!({ "type": "totp_enabled", "recovery_codes": codes }),
                &text,
            );
        }
        TwoFactorCmd::Disable { code } => {
            let code = code.clone();
            with_client(ctx, |c| async move { Ok(c.totp_disable(&code).await?) }).await?;
            ctx.print(&json!({ "type": "totp_disabled" }), || {
                "two-factor login is off".to_owned()
            });
        }
    }
    Ok(())
}

/// `feige close-account`: closes the account (password as for login; `--totp` while
/// two-factor login is on) and forgets the saved session.
pub(crate) async fn close_account(ctx: &Ctx, totp: Option<&str>) -> anyhow::Result<()> {
    let password = password()?;
    let totp = totp.map(str::to_owned);
    with_client(ctx, |c| async move {
        match c.close_account(&password, totp.as_deref()).await {
            // The server closes the connection right after its answer.
            Ok(()) | Err(ClientError::Closed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let username = ctx.username()?;
    let _ = feige_tools::remove_session(&ctx.state_dir, &username);
    ctx.print(
        &json!({ "type": "account_closed", "username": username }),
        || format!("the account {username} is closed"),
    );
    Ok(())
}

/// Prints `value` as JSON with --json, else `text` as it is: several lines of the server's
/// answer that carry no other user's text (a QR code, recovery codes).
fn lines(ctx: &Ctx, value: &serde_json::Value, text: &str) {
    if ctx.cli.json {
        ctx.print(value, String::new);
    } else {
        println!("{text}");
    }
}
