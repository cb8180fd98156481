//! `im-1to1 --ws HOST:PORT`: `im-1to1` over the WebSocket gateway. C clients, one account
//! each, resume their session on `ws://HOST:PORT/ws` and each keep W messages in flight (sent,
//! not yet received) to random other clients; the same closed loop as over TCP, so the two
//! figures stand side by side. Messages carry their send time, sender and sender's sequence
//! in the text; every delivery is checked against its sender's sequence (lost, duplicated,
//! out of order). The generator writes its fixed request shape by hand and reads frames into
//! borrowed typed structs, so its JSON costs little of the CPU it shares with the server.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::costs::Phase;
use super::procstat::CpuWindow;
use super::{accounts, r3, TargetArgs};

#[derive(Debug, Default)]
struct Credit {
    n: AtomicI64,
    notify: Notify,
}

#[derive(Debug)]
struct Shared {
    credit: Vec<Credit>,
    ids: Vec<u64>,
    epoch: Instant,
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    /// Deliveries of a sender's message later than the last one from it.
    unique: AtomicU64,
    duplicated: AtomicU64,
    out_of_order: AtomicU64,
}

/// Runs `im-1to1` over WebSocket at `http` and returns its report.
///
/// # Errors
/// Setup fails, or a client is refused or closed.
pub async fn run(
    t: &TargetArgs,
    a: &super::im::ImArgs,
    http: std::net::SocketAddr,
) -> anyhow::Result<Map<String, Value>> {
    let n = a.clients;
    if n < 2 {
        bail!("need at least 2 clients");
    }
    let accounts = accounts::ensure(t.addr(), &t.user_prefix, n, t.accounts.as_deref()).await?;
    eprintln!("connecting {n} WebSocket clients to {http} ...");
    let sem = Arc::new(Semaphore::new(a.run.connect_concurrency.max(1)));
    let mut joins = Vec::with_capacity(n);
    for acc in &accounts {
        let (sem, token) = (sem.clone(), hex(&acc.token));
        joins.push(tokio::spawn(async move {
            let _p = sem.acquire().await?;
            connect(http, &token).await
        }));
    }
    let mut conns = Vec::with_capacity(n);
    for (i, j) in joins.into_iter().enumerate() {
        conns.push(j.await?.with_context(|| format!("client {i}"))?);
    }
    let shared = Arc::new(Shared {
        credit: (0..n)
            .map(|_| Credit {
                n: AtomicI64::new(a.window as i64),
                notify: Notify::new(),
            })
            .collect(),
        ids: accounts.iter().map(|a| a.user_id).collect(),
        epoch: Instant::now(),
        sent: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        unique: AtomicU64::new(0),
        duplicated: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let (hist_tx, mut hist_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(n);
    for (idx, ws) in conns.into_iter().enumerate() {
        let (shared, phase, hist) = (shared.clone(), phase_rx.clone(), hist_tx.clone());
        tasks.push(tokio::spawn(client(idx, ws, shared, phase, hist)));
    }
    drop(hist_tx);
    tokio::time::sleep(Duration::from_secs_f64(a.run.warmup)).await;
    let start_us = shared.epoch.elapsed().as_micros() as u64;
    let d0 = shared.delivered.load(Ordering::Relaxed);
    let cpu = CpuWindow::start(t.server_proc());
    let m0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(a.run.duration)).await;
    let secs = m0.elapsed().as_secs_f64();
    let delivered = shared.delivered.load(Ordering::Relaxed) - d0;
    let end_us = shared.epoch.elapsed().as_micros() as u64;
    let (server_cpu, gen_cpu) = cpu.percent();
    let _ = phase_tx.send(Phase::Drain);
    let drain0 = Instant::now();
    while drain0.elapsed() < Duration::from_secs_f64(a.run.drain)
        && shared.unique.load(Ordering::Relaxed) < shared.sent.load(Ordering::Relaxed)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = phase_tx.send(Phase::Done);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for task in tasks {
        task.await??;
    }
    while let Some((sent_us, lat)) = hist_rx.recv().await {
        if (start_us..end_us).contains(&sent_us) {
            hist.record(lat.max(1))?;
        }
    }
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    let mut r = t.report("im-1to1");
    r.insert("target".into(), "feige-ws".into());
    if t.label.is_none() {
        r.insert("label".into(), "feige-ws".into());
    }
    r.insert("transport".into(), "websocket".into());
    r.insert("clients".into(), n.into());
    r.insert("window".into(), a.window.into());
    r.insert("delivered_per_s".into(), r3(delivered as f64 / secs));
    r.insert("latency_p50_ms".into(), r3(q(0.5)));
    r.insert("latency_p99_ms".into(), r3(q(0.99)));
    let sent = shared.sent.load(Ordering::Relaxed);
    r.insert("sent".into(), sent.into());
    let acked = shared.acked.load(Ordering::Relaxed);
    r.insert("acked".into(), acked.into());
    r.insert("unacked".into(), sent.saturating_sub(acked).into());
    let lost = sent.saturating_sub(shared.unique.load(Ordering::Relaxed));
    r.insert("lost".into(), lost.into());
    let duplicated = shared.duplicated.load(Ordering::Relaxed);
    r.insert("duplicated".into(), duplicated.into());
    let out_of_order = shared.out_of_order.load(Ordering::Relaxed);
    r.insert("out_of_order".into(), out_of_order.into());
    r.insert("server_cpu_pct".into(), server_cpu.map_or(Value::Null, r3));
    r.insert("generator_cpu_pct".into(), r3(gen_cpu));
    let per_msg = |pct: f64| r3(pct / 100.0 * 1e6 / (delivered as f64 / secs).max(1e-9));
    r.insert(
        "server_cpu_us_per_msg".into(),
        server_cpu.map_or(Value::Null, per_msg),
    );
    r.insert("generator_cpu_us_per_msg".into(), per_msg(gen_cpu));
    Ok(r)
}

/// `idle --ws`: N WebSocket connections, one account each, logged in and then silent but
/// for a heartbeat every 10 s; the server's RSS per connection as `idle` computes it.
/// `hold` is in seconds; `concurrency` connections are opened at once.
pub(super) async fn idle(
    t: &TargetArgs,
    (n, hold, concurrency): (usize, f64, usize),
    http: std::net::SocketAddr,
    accounts: Vec<accounts::Account>,
) -> anyhow::Result<Map<String, Value>> {
    let server = t.server_proc();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = server.map(|p| p.rss());
    eprintln!("opening {n} idle WebSocket connections to {http} ...");
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let t0 = Instant::now();
    let mut joins = Vec::with_capacity(n);
    for i in 0..n {
        let acc = accounts
            .get(i % accounts.len().max(1))
            .context("no accounts")?;
        let (sem, token, mut stop) = (sem.clone(), hex(&acc.token), stop_rx.clone());
        let (up_tx, up_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let ws = {
                let _p = sem.acquire().await?;
                connect(http, &token).await?
            };
            let _ = up_tx.send(());
            let (mut sink, mut stream) = ws.split();
            let mut beat = tokio::time::interval(Duration::from_secs(10));
            loop {
                tokio::select! {
                    _ = beat.tick() => {
                        let hb = json!({ "seq": "hb", "cmd": "heartbeat" });
                        sink.send(Message::text(hb.to_string())).await?;
                    }
                    msg = stream.next() => match msg {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.into()),
                        None => bail!("closed by the server"),
                    },
                    _ = stop.changed() => return Ok(()),
                }
            }
        });
        joins.push((up_rx, task));
    }
    let mut tasks = Vec::with_capacity(n);
    for (i, (up, task)) in joins.into_iter().enumerate() {
        if up.await.is_err() {
            let e = task
                .await?
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("ended"));
            return Err(e.context(format!("connection {i}")));
        }
        tasks.push(task);
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    eprintln!("{n} connected in {connect_secs:.1}s; holding {hold:.0}s");
    let hold_end = Instant::now() + Duration::from_secs_f64(hold.max(1.0));
    let mut peak = 0u64;
    while Instant::now() < hold_end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(p) = server {
            peak = peak.max(p.rss());
        }
        if let Some(done) = tasks.iter().position(tokio::task::JoinHandle::is_finished) {
            let e = tasks.swap_remove(done).await?.err();
            let e = e.unwrap_or_else(|| anyhow::anyhow!("ended"));
            return Err(e.context("a connection ended while held"));
        }
    }
    let rss1 = server.map(|p| p.rss());
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let mut r = t.report("idle");
    r.insert("transport".into(), "websocket".into());
    r.insert("connections".into(), n.into());
    r.insert("users".into(), accounts.len().into());
    r.insert("connect_seconds".into(), r3(connect_secs));
    super::rss_report(&mut r, rss0, rss1.map(|e| e.max(peak)), n);
    Ok(r)
}

/// The read buffer of a bench WebSocket: a read takes at most this many bytes.
const WS_READ_BUFFER: usize = 8 * 1024;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A WebSocket logged in with `token`.
async fn connect(http: std::net::SocketAddr, token: &str) -> anyhow::Result<Ws> {
    // tungstenite zeroes the free part of its read buffer (128 KiB by default) before each
    // read; a small one keeps that from costing more than the frames read.
    let config = WebSocketConfig::default().read_buffer_size(WS_READ_BUFFER);
    let url = format!("ws://{http}/ws");
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
    let login =
        json!({ "seq": "login", "cmd": "login", "data": { "token": token, "device": "bench-ws" } });
    ws.send(Message::text(login.to_string())).await?;
    while let Some(msg) = ws.next().await {
        if let Message::Text(t) = msg? {
            let v: Value = serde_json::from_str(t.as_str())?;
            if v["seq"] == "login" {
                if v["response"]["code"] != 200 {
                    bail!("login refused: {v}");
                }
                return Ok(ws);
            }
        }
    }
    bail!("closed before the login answer")
}

/// A text frame from the gateway, as the generator reads it (borrowed; other fields skipped).
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(default, borrow)]
    cmd: Option<&'a str>,
    #[serde(default, borrow)]
    seq: Option<&'a str>,
    #[serde(borrow)]
    response: Reply<'a>,
}

#[derive(Deserialize)]
struct Reply<'a> {
    code: u16,
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(default, rename = "type", borrow)]
    kind: Option<&'a str>,
    #[serde(default, borrow)]
    text: Option<&'a str>,
}

/// What a frame from the gateway was.
enum Event<'a> {
    /// A message push, with its text.
    Message(&'a str),
    /// A `send_message` (or heartbeat) answered 200.
    Answered,
    /// The heartbeat's answer.
    Heartbeat,
    /// Another push.
    OtherPush,
    /// A refusal, to report.
    Refused(String),
}

/// How the gateway writes a `send_message` answer that went well (keys in sorted order).
const ANSWERED: &str = r#"{"cmd":"send_message","response":{"code":200,"codeMsg":"Ok","data":{"#;
/// How it writes a plain message push, up to its event's fields.
const PUSH: &str = r#"{"cmd":"push","response":{"code":200,"codeMsg":"Ok","data":{"#;
/// How a plain message event ends: its `text` (which the generator writes without escapes),
/// `to_user`, then `type`.
const MESSAGE_END: &str = r#","type":"message"}}}"#;

/// The text of a plain message push written as the gateway writes it, found without a parser
/// (and without a substring search: byte searches from the end); `None` for anything else.
fn quick_message(frame: &str) -> Option<&str> {
    let body = frame.strip_prefix(PUSH)?.strip_suffix(MESSAGE_END)?;
    // `...,"text":"TEXT","to_user":"DIGITS"`
    let body = body.strip_suffix('"')?;
    let body = body.trim_end_matches(|c: char| c.is_ascii_digit());
    let body = body.strip_suffix(r#"","to_user":""#)?;
    // An unescaped quote ends the text; an escaped one (never the generator's) has a
    // backslash, and the text is refused.
    let at = body.rfind('"')?;
    let (head, text) = (body.get(..=at)?, body.get(at + 1..)?);
    (head.ends_with(r#","text":""#) && !text.contains('\\')).then_some(text)
}

/// Reads a frame: the fixed shapes of an answer and a message push by hand, the rest by the
/// typed structs; a frame they do not fit (escapes in a borrowed string, say) is read as a
/// `Value` tree.
fn event(text: &str) -> anyhow::Result<Event<'_>> {
    if text.starts_with(ANSWERED) {
        return Ok(Event::Answered);
    }
    if let Some(t) = quick_message(text) {
        return Ok(Event::Message(t));
    }
    if let Ok(f) = serde_json::from_str::<Frame<'_>>(text) {
        return Ok(match (f.cmd, f.seq) {
            (Some("push"), _) => match f.response.data {
                Some(Data {
                    kind: Some("message"),
                    text: Some(t),
                }) => Event::Message(t),
                _ => Event::OtherPush,
            },
            (_, Some("hb")) => Event::Heartbeat,
            _ if f.response.code == 200 => Event::Answered,
            _ => Event::Refused(text.to_owned()),
        });
    }
    let v: Value = serde_json::from_str(text)?;
    Ok(if v["cmd"] == "push" {
        match v["response"]["data"]["type"].as_str() {
            Some("message") => bail!("a message push the typed path cannot read: {text}"),
            _ => Event::OtherPush,
        }
    } else if v["seq"] == "hb" {
        Event::Heartbeat
    } else {
        Event::Refused(text.to_owned())
    })
}

/// The `send_message` frame of a message, written into `out` (its text needs no escapes).
fn write_request(out: &mut String, seq: u64, to: u64, now_us: u128, idx: usize) {
    let _ = write!(
        out,
        r#"{{"seq":"{seq}","cmd":"send_message","data":{{"to_user":"{to}","text":""#
    );
    let start = out.len();
    let _ = write!(out, "{now_us}:{idx}:{seq}:");
    const PAD: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    let pad = 100usize.saturating_sub(out.len() - start);
    out.push_str(PAD.get(..pad).unwrap_or(PAD));
    out.push_str(r#""}}"#);
}

/// One client: sends while it has credit and the run is on, reads answers and pushes.
async fn client(
    idx: usize,
    mut ws: Ws,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
    hist: tokio::sync::mpsc::UnboundedSender<(u64, u64)>,
) -> anyhow::Result<()> {
    // One task sends and reads, never both at once: the WebSocket is not split (no lock
    // between two halves on every call).
    let n = shared.ids.len();
    let mut rng = (idx as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut seq = 0u64;
    // The last sequence seen from each sender.
    let mut last = vec![0u64; n];
    let mut last_heartbeat = Instant::now();
    loop {
        let credit = &shared.credit[idx];
        while *phase.borrow() == Phase::Run && credit.n.load(Ordering::Relaxed) > 0 {
            credit.n.fetch_sub(1, Ordering::Relaxed);
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut to = (rng % n as u64) as usize;
            if to == idx {
                to = (to + 1) % n;
            }
            seq += 1;
            let now = shared.epoch.elapsed().as_micros();
            let mut req = String::with_capacity(192);
            write_request(&mut req, seq, shared.ids[to], now, idx);
            ws.feed(Message::text(req)).await?;
            shared.sent.fetch_add(1, Ordering::Relaxed);
        }
        if last_heartbeat.elapsed() > Duration::from_secs(10) {
            last_heartbeat = Instant::now();
            let hb = json!({ "seq": "hb", "cmd": "heartbeat" });
            ws.feed(Message::text(hb.to_string())).await?;
        }
        ws.flush().await?;
        tokio::select! {
            msg = ws.next() => {
                let Some(msg) = msg else { bail!("client {idx}: closed") };
                let Message::Text(t) = msg? else { continue };
                match event(t.as_str())? {
                    Event::Message(text) => {
                        let mut parts = text.split(':');
                        let mut field = || parts.next().and_then(|p| p.parse::<u64>().ok());
                        let (Some(sent_us), Some(from), Some(sq)) = (field(), field(), field()) else {
                            bail!("client {idx}: unexpected message {text:?}");
                        };
                        let Some(l) = usize::try_from(from).ok().and_then(|f| last.get_mut(f)) else {
                            bail!("client {idx}: message from unknown sender {from}");
                        };
                        super::OrderCounters {
                            unique: &shared.unique,
                            duplicated: &shared.duplicated,
                            out_of_order: &shared.out_of_order,
                        }
                        .count(l, sq);
                        let now = shared.epoch.elapsed().as_micros() as u64;
                        let _ = hist.send((sent_us, now.saturating_sub(sent_us)));
                        shared.delivered.fetch_add(1, Ordering::Relaxed);
                        if let Some(c) = shared.credit.get(from as usize) {
                            c.n.fetch_add(1, Ordering::Relaxed);
                            c.notify.notify_one();
                        }
                    }
                    Event::Answered => {
                        shared.acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Event::Heartbeat | Event::OtherPush => {}
                    Event::Refused(v) => bail!("client {idx}: refused: {v}"),
                }
            }
            () = credit.notify.notified(), if *phase.borrow() == Phase::Run => {}
            r = phase.changed() => {
                if r.is_err() || *phase.borrow() == Phase::Done {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_the_documented_json_and_frames_are_read() {
        let mut out = String::new();
        write_request(&mut out, 7, 42, 123, 3);
        let v: Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(v["seq"], "7");
        assert_eq!(v["cmd"], "send_message");
        assert_eq!(v["data"]["to_user"], "42");
        let text = v["data"]["text"].as_str().unwrap_or_default();
        assert!(text.starts_with("123:3:7:x") && text.len() == 100, "{text}");
        let push = json!({ "cmd": "push", "response": { "code": 200, "codeMsg": "Ok",
            "data": { "type": "message", "text": text, "kind": "text" } } });
        assert!(matches!(event(&push.to_string()), Ok(Event::Message(t)) if t == text));
        let server = format!(
            r#"{{"cmd":"push","response":{{"code":200,"codeMsg":"Ok","data":{{"client_msg_id":"0","from_user":"4","seq":"9","text":"{text}","to_user":"5","type":"message"}}}}}}"#
        );
        assert_eq!(quick_message(&server), Some(text));
        assert!(matches!(event(&server), Ok(Event::Message(t)) if t == text));
        let escaped = server.replace(":7:", r#":7\":"#);
        assert_eq!(quick_message(&escaped), None);
        let answer = r#"{"cmd":"send_message","response":{"code":200,"codeMsg":"Ok","data":{"seq":"3"}},"seq":"7"}"#;
        assert!(matches!(event(answer), Ok(Event::Answered)));
        let refused =
            r#"{"cmd":"send_message","response":{"code":403,"codeMsg":"NO","data":{}},"seq":7}"#;
        assert!(matches!(event(refused), Ok(Event::Refused(_))));
        let other =
            r#"{"cmd":"push","response":{"code":200,"data":{"type":"presence","text":"a\"b"}}}"#;
        assert!(matches!(event(other), Ok(Event::OtherPush)));
    }
}
