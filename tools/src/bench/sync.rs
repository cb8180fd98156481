//! `sync`: one user was offline while K messages reached it across M conversations (from M
//! senders); it reconnects (token resume) and syncs page by page. Reports the time from
//! connect until every message is in, and checks that each conversation arrived gapless and
//! exactly once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use feige_protocol::{frame, pb, Envelope, RequestKind, ResponseResult};
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::wire::{feige_call, feige_resume, Event, Kind, Wire};
use super::{accounts, r3, TargetArgs};

/// Settings of `sync`.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// Messages sent to the offline user.
    #[arg(short = 'k', long, default_value_t = 10_000)]
    pub messages: usize,
    /// Conversations (senders) they are spread over.
    #[arg(long, default_value_t = 100)]
    pub conversations: usize,
    /// Repetitions (each sends K new messages and syncs them).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Messages per Sync page (the server caps it at 1000).
    #[arg(long, default_value_t = 1000)]
    pub page: u32,
}

/// Sync until the server says nothing more; returns (messages per conversation as seqs).
async fn sync_all(
    s: &mut tokio::net::TcpStream,
    buf: &mut BytesMut,
    positions: &mut HashMap<u64, u64>,
    page: u32,
    rid: &mut u64,
) -> anyhow::Result<(usize, u64)> {
    let mut got = 0usize;
    let mut bad = 0u64;
    loop {
        *rid += 1;
        let req = pb::Sync {
            positions: positions
                .iter()
                .map(|(&c, &q)| pb::ConversationPosition {
                    conversation_id: c,
                    seq: q,
                })
                .collect(),
            limit: page,
        };
        let ResponseResult::Sync(p) = feige_call(s, buf, *rid, RequestKind::Sync(req)).await?
        else {
            bail!("unexpected answer to Sync");
        };
        for m in &p.messages {
            let last = positions.entry(m.conversation_id).or_insert(0);
            if m.seq != *last + 1 {
                bad += 1;
            }
            *last = (*last).max(m.seq);
        }
        got += p.messages.len();
        if !p.has_more {
            return Ok((got, bad));
        }
    }
}

/// Sends `per_sender` messages from each sender to `to`, pipelined, and waits for every ack.
async fn send_burst(
    addr: SocketAddr,
    senders: &[accounts::Account],
    to: u64,
    per_sender: usize,
    id_base: u64,
) -> anyhow::Result<()> {
    let mut joins = Vec::new();
    for acc in senders {
        let token = acc.token.clone();
        joins.push(tokio::spawn(async move {
            let (mut s, mut buf) = feige_resume(addr, None, &token).await?;
            let mut wire = Wire::Feige {
                ids: Arc::new(vec![to]),
                next_rid: 100,
            };
            let mut out = BytesMut::new();
            let mut p = Vec::new();
            for i in 0..per_sender {
                super::wire::payload(0, 0, i as u64 + 1, &mut p);
                wire.encode_send(0, id_base + i as u64, &p, &mut out);
            }
            s.write_all(&out).await?;
            out.clear();
            let mut acked = 0;
            while acked < per_sender {
                if s.read_buf(&mut buf).await? == 0 {
                    bail!("server closed the connection");
                }
                while let Some(ev) = wire.decode(&mut buf, &mut out)? {
                    if let Event::Acked = ev {
                        acked += 1;
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for j in joins {
        j.await??;
    }
    Ok(())
}

/// Runs `sync` and returns its report.
///
/// # Errors
/// Setup fails, or a sync misses or repeats messages.
pub async fn run(t: &TargetArgs, a: &SyncArgs) -> anyhow::Result<Map<String, Value>> {
    if t.target != Kind::Feige {
        bail!("sync is a Feige workload");
    }
    let m = a.conversations.max(1);
    let addr = t.addr();
    let accs = accounts::ensure(
        addr,
        &format!("{}s", t.user_prefix),
        m + 1,
        t.accounts.as_deref(),
    )
    .await?;
    let (reader, senders) = accs.split_first().context("no accounts")?;
    let per_sender = a.messages.div_ceil(m);
    let total = per_sender * m;
    let mut positions: HashMap<u64, u64> = HashMap::new();
    let mut rid = 10;
    // Catch up with whatever earlier runs left, so each repetition syncs exactly its burst.
    {
        let (mut s, mut buf) = feige_resume(addr, None, &reader.token).await?;
        sync_all(&mut s, &mut buf, &mut positions, a.page, &mut rid).await?;
    }
    let mut times = Vec::new();
    let mut bad_total = 0;
    for rep in 0..a.repeat.max(1) {
        let id_base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64)
            << 8;
        eprintln!(
            "[sync] {}: sending {total} messages over {m} conversations ...",
            rep + 1
        );
        send_burst(addr, senders, reader.user_id, per_sender, id_base).await?;
        let t0 = Instant::now();
        let (mut s, mut buf) = feige_resume(addr, None, &reader.token).await?;
        let (got, bad) = sync_all(&mut s, &mut buf, &mut positions, a.page, &mut rid).await?;
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "[sync] {}: {got} messages in {:.1} ms",
            rep + 1,
            secs * 1000.0
        );
        if got != total {
            bail!("synced {got} messages, expected {total}");
        }
        bad_total += bad;
        times.push(secs);
        // Record the position as the device's, as a client does after a sync.
        rid += 1;
        let ack = pb::Ack {
            positions: positions
                .iter()
                .map(|(&c, &q)| pb::ConversationPosition {
                    conversation_id: c,
                    seq: q,
                })
                .collect(),
        };
        s.write_all(&frame::encode_to_bytes(&Envelope::request(
            rid,
            RequestKind::Ack(ack),
        )))
        .await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    times.sort_by(|x, y| x.total_cmp(y));
    let median = times[times.len() / 2];
    let mut r = t.report("sync");
    r.insert("messages".into(), total.into());
    r.insert("conversations".into(), m.into());
    r.insert("repeat".into(), times.len().into());
    r.insert("sync_ms".into(), r3(median * 1000.0));
    r.insert(
        "sync_ms_all".into(),
        Value::Array(times.iter().map(|x| r3(x * 1000.0)).collect()),
    );
    r.insert("messages_per_s".into(), r3(total as f64 / median));
    r.insert("out_of_order".into(), bad_total.into());
    Ok(r)
}
