//! Bench accounts on a Feige server: `PREFIX0`, `PREFIX1`, ... registered and logged in once;
//! their session tokens can be kept in a file so later runs against the same data directory
//! resume (cheap) instead of logging in again (a PBKDF2 hash each).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use bytes::BytesMut;
use feige_protocol::{pb, RequestKind, ResponseResult};
use tokio::sync::Semaphore;

use super::wire::{feige_call, tcp_connect};

/// Password of every bench account.
pub const PASSWORD: &str = "bench-password";

/// One account ready for [`super::wire::feige_resume`].
#[derive(Debug, Clone)]
pub struct Account {
    /// Its user id.
    pub user_id: u64,
    /// A live session token.
    pub token: Vec<u8>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Registers (if needed) and logs in `n` accounts, reusing tokens saved in `cache`.
///
/// # Errors
/// A registration or login fails, or the cache cannot be written.
pub async fn ensure(
    addr: SocketAddr,
    prefix: &str,
    n: usize,
    cache: Option<&Path>,
) -> anyhow::Result<Vec<Account>> {
    let mut known: std::collections::HashMap<String, Account> = Default::default();
    if let Some(path) = cache {
        if let Ok(text) = std::fs::read_to_string(path) {
            for line in text.lines() {
                let mut f = line.split(' ');
                if let (Some(name), Some(id), Some(tok)) = (f.next(), f.next(), f.next()) {
                    if let (Ok(user_id), Some(token)) = (id.parse(), unhex(tok)) {
                        known.insert(name.to_owned(), Account { user_id, token });
                    }
                }
            }
        }
    }
    let missing: Vec<usize> = (0..n)
        .filter(|i| !known.contains_key(&format!("{prefix}{i}")))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "creating {} bench accounts (a password hash each; cached in {})...",
            missing.len(),
            cache.map_or("memory only".into(), |p| p.display().to_string())
        );
        let t0 = Instant::now();
        let sem = Arc::new(Semaphore::new(16));
        let mut joins = Vec::new();
        for i in missing {
            let sem = sem.clone();
            let name = format!("{prefix}{i}");
            joins.push(tokio::spawn(async move {
                let _p = sem.acquire().await?;
                let acc = create(addr, &name).await.with_context(|| name.clone())?;
                anyhow::Ok((name, acc))
            }));
        }
        let mut file = match cache {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("open {}", p.display()))?,
            ),
            None => None,
        };
        let total = joins.len();
        for (done, j) in joins.into_iter().enumerate() {
            let (name, acc) = j.await??;
            if let Some(f) = file.as_mut() {
                writeln!(f, "{name} {} {}", acc.user_id, hex(&acc.token))?;
            }
            known.insert(name, acc);
            if (done + 1) % 200 == 0 {
                eprintln!("  {} / {total} accounts", done + 1);
            }
        }
        eprintln!("accounts ready in {:.1}s", t0.elapsed().as_secs_f64());
    }
    (0..n)
        .map(|i| {
            known
                .get(&format!("{prefix}{i}"))
                .cloned()
                .context("account missing")
        })
        .collect()
}

/// Registers `name` (an existing account is fine) and logs in.
async fn create(addr: SocketAddr, name: &str) -> anyhow::Result<Account> {
    let mut s = tcp_connect(addr, None).await?;
    let mut buf = BytesMut::new();
    feige_call(
        &mut s,
        &mut buf,
        1,
        RequestKind::Hello(pb::Hello {
            major: feige_protocol::PROTOCOL_MAJOR,
            client: "feige-bench".into(),
            ..Default::default()
        }),
    )
    .await?;
    let reg = feige_call(
        &mut s,
        &mut buf,
        2,
        RequestKind::Register(pb::Register {
            username: name.into(),
            password: PASSWORD.into(),
            nickname: name.into(),
            ..Default::default()
        }),
    )
    .await;
    if let Err(e) = &reg {
        if !e.to_string().contains("USERNAME_TAKEN") {
            bail!("register: {e}");
        }
    }
    match feige_call(
        &mut s,
        &mut buf,
        3,
        RequestKind::Login(pb::Login {
            username: name.into(),
            password: PASSWORD.into(),
            device: "bench".into(),
        }),
    )
    .await?
    {
        ResponseResult::Session(sess) => Ok(Account {
            user_id: sess.user_id,
            token: sess.token.to_vec(),
        }),
        other => bail!("unexpected login answer {other:?}"),
    }
}
