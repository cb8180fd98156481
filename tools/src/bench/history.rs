//! `history`: page through a large store and search it. The store is filled (once; later runs
//! reuse it) with `--messages` messages over `--conversations` 1:1 conversations of one reader,
//! made of words from a fixed vocabulary plus some Chinese, so search has realistic terms.
//! Then the reader fetches 50-message pages at random depths and runs full-text searches.

use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::BytesMut;
use feige_protocol::{pb, RequestKind, ResponseResult};
use hdrhistogram::Histogram;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::wire::{feige_call, feige_resume, Event, Kind, Wire};
use super::{accounts, r3, TargetArgs};

/// Settings of `history`.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// Messages the reader's conversations must hold (filled up when fewer).
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
    /// Conversations they are spread over.
    #[arg(long, default_value_t = 100)]
    pub conversations: usize,
    /// History pages fetched.
    #[arg(long, default_value_t = 2000)]
    pub pages: usize,
    /// Searches run.
    #[arg(long, default_value_t = 300)]
    pub searches: usize,
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "tu", "sa", "bel", "dor", "fi", "gan", "hu", "jo", "ke", "lin", "mo",
    "nu", "pe", "qui", "ra", "sol", "ta", "ven", "wi", "xo", "ya", "zu",
];
const CHINESE: &[&str] = &[
    "你好", "会议", "明天", "项目", "飞鸽", "消息", "周末", "报告",
];

/// Word `i` of the vocabulary: two or three syllables.
fn word(i: u64) -> String {
    let n = SYLLABLES.len() as u64;
    let mut w = String::new();
    w.push_str(SYLLABLES[(i % n) as usize]);
    w.push_str(SYLLABLES[((i / n) % n) as usize]);
    if i >= n * n {
        w.push_str(SYLLABLES[((i / n / n) % n) as usize]);
    }
    w
}

/// A message of 8–15 words; low word numbers are much more common (roughly Zipf).
fn sentence(rng: &mut u64, out: &mut String) {
    out.clear();
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let words = 8 + next() % 8;
    for k in 0..words {
        if k > 0 {
            out.push(' ');
        }
        let r = next();
        if r % 10 == 0 {
            out.push_str(CHINESE[(r / 10 % CHINESE.len() as u64) as usize]);
        } else {
            // 1/u-ish: square a uniform number to favour small ranks.
            let u = (r >> 11) as f64 / (1u64 << 53) as f64;
            out.push_str(&word((u * u * 5000.0) as u64));
        }
    }
}

/// The newest seq of the reader's conversation with `peer` (0 when none).
async fn newest_seq(
    s: &mut tokio::net::TcpStream,
    buf: &mut BytesMut,
    rid: u64,
    peer: u64,
) -> anyhow::Result<u64> {
    let q = pb::History {
        peer_user: peer,
        limit: 1,
        ..Default::default()
    };
    match feige_call(s, buf, rid, RequestKind::History(q)).await? {
        ResponseResult::History(h) => Ok(h.messages.first().map_or(0, |m| m.seq)),
        _ => bail!("unexpected answer to History"),
    }
}

/// Runs `history` and returns its report.
///
/// # Errors
/// Setup fails or a request fails.
pub async fn run(t: &TargetArgs, a: &HistoryArgs) -> anyhow::Result<Map<String, Value>> {
    if t.target != Kind::Feige {
        bail!("history is a Feige workload");
    }
    let m = a.conversations.max(1);
    let addr = t.addr();
    let accs = accounts::ensure(
        addr,
        &format!("{}h", t.user_prefix),
        m + 1,
        t.accounts.as_deref(),
    )
    .await?;
    let (reader, senders) = accs.split_first().context("no accounts")?;
    let (mut s, mut buf) = feige_resume(addr, None, &reader.token).await?;
    let mut rid = 10u64;
    let mut seqs = Vec::with_capacity(m);
    for p in senders {
        rid += 1;
        seqs.push(newest_seq(&mut s, &mut buf, rid, p.user_id).await?);
    }
    let have: u64 = seqs.iter().sum();
    let per = (a.messages as u64).div_ceil(m as u64);
    let marker = format!("zzmark{}", std::process::id());
    if have < a.messages as u64 {
        eprintln!(
            "[history] store holds {have} of {} messages; filling ...",
            a.messages
        );
        // Offline while filling: the pushes would otherwise pile up unread.
        drop(s);
        let t0 = Instant::now();
        let mut joins = Vec::new();
        for (i, p) in senders.iter().enumerate() {
            let missing = per.saturating_sub(seqs[i]) as usize;
            let token = p.token.clone();
            let to = reader.user_id;
            let marker = (i == 0).then(|| marker.clone());
            joins.push(tokio::spawn(fill(
                addr, token, to, missing, i as u64, marker,
            )));
        }
        for j in joins {
            j.await??;
        }
        eprintln!("[history] filled in {:.1}s", t0.elapsed().as_secs_f64());
        (s, buf) = feige_resume(addr, None, &reader.token).await?;
        for (i, p) in senders.iter().enumerate() {
            rid += 1;
            seqs[i] = newest_seq(&mut s, &mut buf, rid, p.user_id).await?;
        }
        // The search index follows the commits; wait until it has the last message.
        let t1 = Instant::now();
        loop {
            rid += 1;
            let q = pb::Search {
                query: marker.clone(),
                limit: 1,
                ..Default::default()
            };
            if let ResponseResult::Search(r) =
                feige_call(&mut s, &mut buf, rid, RequestKind::Search(q)).await?
            {
                if !r.messages.is_empty() {
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        eprintln!(
            "[history] search index caught up {:.1}s after the fill",
            t1.elapsed().as_secs_f64()
        );
    }
    let total: u64 = seqs.iter().sum();
    eprintln!(
        "[history] {total} messages in {m} conversations; {} pages, {} searches",
        a.pages, a.searches
    );
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut pages = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for _ in 0..a.pages {
        let i = (next() % m as u64) as usize;
        let top = seqs[i].max(1);
        let before = 1 + next() % top;
        rid += 1;
        let q = pb::History {
            peer_user: senders[i].user_id,
            limit: 50,
            before_seq: before + 1,
            ..Default::default()
        };
        let t0 = Instant::now();
        let ResponseResult::History(h) =
            feige_call(&mut s, &mut buf, rid, RequestKind::History(q)).await?
        else {
            bail!("unexpected answer to History");
        };
        let us = t0.elapsed().as_micros() as u64;
        let want = before.min(50) as usize;
        if h.messages.len() != want || h.messages.first().map(|m| m.seq) != Some(before) {
            bail!(
                "history page before seq {} returned {} messages",
                before + 1,
                h.messages.len()
            );
        }
        let _ = pages.record(us.max(1));
    }
    let mut search = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut hits = 0u64;
    for k in 0..a.searches {
        let r = next();
        let query = match k % 4 {
            0 => word(r % 20),   // very common word
            1 => word(r % 5000), // any word
            2 => CHINESE[(r % CHINESE.len() as u64) as usize].to_owned(),
            _ => format!("{} {}", word(r % 50), word((r >> 20) % 200)), // two words
        };
        rid += 1;
        let q = pb::Search {
            query,
            limit: 20,
            ..Default::default()
        };
        let t0 = Instant::now();
        let ResponseResult::Search(h) =
            feige_call(&mut s, &mut buf, rid, RequestKind::Search(q)).await?
        else {
            bail!("unexpected answer to Search");
        };
        let _ = search.record((t0.elapsed().as_micros() as u64).max(1));
        hits += h.messages.len() as u64;
    }
    let ms = |h: &Histogram<u64>, q: f64| r3(h.value_at_quantile(q) as f64 / 1000.0);
    let mut r = t.report("history");
    r.insert("messages".into(), total.into());
    r.insert("conversations".into(), m.into());
    r.insert("pages".into(), a.pages.into());
    r.insert("page_p50_ms".into(), ms(&pages, 0.5));
    r.insert("page_p99_ms".into(), ms(&pages, 0.99));
    r.insert("searches".into(), a.searches.into());
    r.insert("search_p50_ms".into(), ms(&search, 0.5));
    r.insert("search_p99_ms".into(), ms(&search, 0.99));
    r.insert(
        "search_hits_per_query".into(),
        r3(hits as f64 / a.searches.max(1) as f64),
    );
    Ok(r)
}

/// Sends `n` generated messages to `to`, at most 512 unacked, the last one carrying `marker`.
async fn fill(
    addr: std::net::SocketAddr,
    token: Vec<u8>,
    to: u64,
    n: usize,
    seed: u64,
    marker: Option<String>,
) -> anyhow::Result<()> {
    if n == 0 {
        return Ok(());
    }
    let (mut s, mut buf) = feige_resume(addr, None, &token).await?;
    let mut wire = Wire::Feige {
        ids: Arc::new(vec![to]),
        next_rid: 100,
    };
    let id_base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
        << 8;
    let mut rng = (seed + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut text = String::new();
    let mut out = BytesMut::new();
    let (mut sent, mut acked) = (0usize, 0usize);
    while acked < n {
        while sent < n && sent - acked < 512 {
            sentence(&mut rng, &mut text);
            if sent + 1 == n {
                if let Some(m) = &marker {
                    text.push(' ');
                    text.push_str(m);
                }
            }
            wire.encode_send(0, id_base + sent as u64, text.as_bytes(), &mut out);
            sent += 1;
        }
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
        if s.read_buf(&mut buf).await? == 0 {
            bail!("server closed the connection");
        }
        while let Some(ev) = wire.decode(&mut buf, &mut out)? {
            if let Event::Acked = ev {
                acked += 1;
            }
        }
    }
    Ok(())
}
