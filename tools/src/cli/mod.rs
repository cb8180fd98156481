//! The `feige` commands: [`Ctx`] (the resolved global options and the connection to the
//! server) here, the printing in `output`, and one file per command family.

pub(crate) mod account;
pub(crate) mod admin;
pub(crate) mod args;
pub(crate) mod chats;
pub(crate) mod codes;
pub(crate) mod contacts;
pub(crate) mod files;
pub(crate) mod friends;
pub(crate) mod groups;
pub(crate) mod messages;
pub(crate) mod notifications;
pub(crate) mod output;
pub(crate) mod receipts;
pub(crate) mod red_packets;
pub(crate) mod rooms;
pub(crate) mod twofactor;

use std::path::PathBuf;

use anyhow::Context;
use feige_client::{Client, ClientConfig, ErrorCode, Events};
use feige_tools::social::UserRef;
use feige_tools::{
    check_username, current_user, default_state_dir, hex_decode, load_session, Failure,
    SavedSession, DEFAULT_DEVICE, DEFAULT_SERVER,
};

use crate::Cli;

/// Resolved global settings.
pub(crate) struct Ctx {
    cli: Cli,
    state_dir: PathBuf,
}

impl Ctx {
    /// The settings of `cli`, with the state directory resolved.
    pub(crate) fn new(cli: Cli) -> Ctx {
        let state_dir = cli.state_dir.clone().unwrap_or_else(default_state_dir);
        Ctx { cli, state_dir }
    }

    /// The command to run.
    pub(crate) fn command(&self) -> &crate::Command {
        &self.cli.command
    }

    /// The server: --server, else the saved session's, else the default.
    pub(super) fn server(&self, saved: Option<&SavedSession>) -> String {
        self.cli
            .server
            .clone()
            .or_else(|| saved.map(|s| s.server.clone()))
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
    }

    /// The user commands act as: --user, else the current one.
    pub(super) fn username(&self) -> anyhow::Result<String> {
        let user = match &self.cli.user {
            Some(u) => u.clone(),
            None => current_user(&self.state_dir).ok_or_else(|| {
                Failure::new(
                    "NOT_LOGGED_IN",
                    "not logged in: run `feige login --user NAME` or pass --user",
                )
            })?,
        };
        check_username(&user)?;
        Ok(user)
    }

    /// The client configuration for one command.
    pub(super) fn config(&self, server: String, device: String, auto_sync: bool) -> ClientConfig {
        ClientConfig {
            device,
            client_name: concat!("feige-cli/", env!("CARGO_PKG_VERSION")).to_owned(),
            auto_sync,
            tls: self.cli.tls,
            ca_file: self.cli.ca_file.clone(),
            ..ClientConfig::new(server)
        }
    }

    /// Connects without a session (for register and login), with neither sync nor acks;
    /// returns the client, its events (keep them while the client is used) and the server
    /// address.
    pub(super) async fn connect_fresh(&self) -> anyhow::Result<(Client, Events, String)> {
        let server = self.server(None);
        let device = self
            .cli
            .device
            .clone()
            .unwrap_or_else(|| DEFAULT_DEVICE.into());
        let (client, events) = Client::connect(self.config(server.clone(), device, false))
            .await
            .with_context(|| format!("cannot connect to {server}"))?;
        Ok((client, events, server))
    }

    /// Connects and resumes the saved session. With `auto_sync` off the client neither syncs
    /// nor acks, so one-shot commands leave unread messages for `listen`.
    pub(super) async fn resume(
        &self,
        auto_sync: bool,
    ) -> anyhow::Result<(Client, Events, SavedSession)> {
        let username = self.username()?;
        let saved = load_session(&self.state_dir, &username)
            .with_context(|| format!("cannot read the session of {username}"))?
            .ok_or_else(|| {
                Failure::new(
                    "NOT_LOGGED_IN",
                    format!("no saved session for {username}: run `feige login --user {username}`"),
                )
            })?;
        let token = hex_decode(&saved.token)
            .ok_or_else(|| Failure::new("INVALID_TOKEN", "the saved session token is corrupt"))?;
        let device = self
            .cli
            .device
            .clone()
            .unwrap_or_else(|| saved.device.clone());
        let server = self.server(Some(&saved));
        let (client, events) = Client::connect(self.config(server.clone(), device, auto_sync))
            .await
            .with_context(|| format!("cannot connect to {server}"))?;
        match client.resume(&token).await {
            Ok(_) => Ok((client, events, saved)),
            Err(e) if e.code() == Some(ErrorCode::InvalidToken) => {
                client.close().await;
                Err(anyhow::Error::new(e).context(format!(
                    "the session of {username} has expired: run `feige login --user {username}`"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The id of the user `s` names (a user id, or a username looked up on the server).
pub(super) async fn user_id(client: &Client, s: &str) -> anyhow::Result<u64> {
    match UserRef::parse(s) {
        UserRef::Id(id) => Ok(id),
        UserRef::Name(name) => Ok(client
            .user_by_name(&name)
            .await
            .with_context(|| format!("cannot find user {name:?}"))?
            .user_id),
    }
}

/// Runs `f` on a resumed session (without syncing), then closes it.
pub(super) async fn with_client<T, F, Fut>(ctx: &Ctx, f: F) -> anyhow::Result<T>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let (client, _events, _) = ctx.resume(false).await?;
    let result = f(client.clone()).await;
    client.close().await;
    result
}
