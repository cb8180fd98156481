//! The three protocols the harness speaks, each just far enough for the workloads: Feige's
//! framed protobuf, MQTT 3.1.1 (QoS 0 and 1) and core NATS. Client `i` receives on its own
//! address: Feige user `ids[i]`, MQTT topic `u/i`, NATS subject `u.i`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use feige_protocol::{frame, pb, Body, Envelope, PushKind, RequestKind, ResponseResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

mod scan;
use scan::pushed_text;

/// Which server the harness drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Feige (messages persisted, acked after commit).
    Feige,
    /// An MQTT 3.1.1 broker (mosquitto).
    Mqtt,
    /// A core NATS server (nats-server).
    Nats,
}

/// What one read of the stream produced.
#[derive(Debug)]
pub enum Event {
    /// A message for this client arrived; its payload.
    Delivered(Bytes),
    /// The server acknowledged one of this client's sends (Feige SendOk, MQTT PUBACK).
    Acked,
    /// Anything else (a pong, a subscription ack...).
    Other,
}

/// One client's protocol state.
#[derive(Debug)]
pub enum Wire {
    /// Feige: user ids of all clients, and the next request id.
    Feige {
        /// User id of client `i`.
        ids: Arc<Vec<u64>>,
        /// Next request id.
        next_rid: u64,
    },
    /// MQTT: publish QoS and the next packet id.
    Mqtt {
        /// 0 or 1.
        qos: u8,
        /// Next packet id (1..=65535).
        next_pid: u16,
    },
    /// Core NATS.
    Nats,
}

/// Connects to `addr`, from `src` when given (to spread connections over 127.0.0.x).
///
/// # Errors
/// The connection fails.
pub async fn tcp_connect(addr: SocketAddr, src: Option<IpAddr>) -> anyhow::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = src {
        sock.bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind {ip}"))?;
    }
    let s = sock
        .connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Reads until `decode` yields something or the peer closes.
async fn read_until<T>(
    s: &mut TcpStream,
    buf: &mut BytesMut,
    mut decode: impl FnMut(&mut BytesMut) -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    loop {
        if let Some(v) = decode(buf)? {
            return Ok(v);
        }
        if s.read_buf(buf).await? == 0 {
            bail!("server closed the connection during setup");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Feige

/// Sends one Feige request and waits for its response (skipping pushes).
///
/// # Errors
/// I/O errors, a closed connection, or an error response (its code in the message).
pub async fn feige_call(
    s: &mut TcpStream,
    buf: &mut BytesMut,
    rid: u64,
    kind: RequestKind,
) -> anyhow::Result<ResponseResult> {
    s.write_all(&frame::encode_to_bytes(&Envelope::request(rid, kind)))
        .await?;
    read_until(s, buf, |b| {
        while let Some(env) = frame::decode(b, usize::MAX)? {
            // A connection turned away (a connection cap, the login deadline) hears why in a
            // Kicked push before the server closes it.
            if let Some(Body::Push(pb::Push {
                kind: Some(PushKind::Kicked(k)),
            })) = &env.body
            {
                bail!(
                    "kicked by the server during setup: {} ({}){}",
                    pb::ErrorCode::try_from(k.code).map_or("UNKNOWN", |c| c.as_str_name()),
                    k.reason,
                    hint(k.code)
                );
            }
            if env.request_id != rid {
                continue;
            }
            if let Some(Body::Response(r)) = env.body {
                return match r.result {
                    Some(ResponseResult::Error(e)) => bail!(
                        "{}: {}{}",
                        pb::ErrorCode::try_from(e.code).map_or("UNKNOWN", |c| c.as_str_name()),
                        e.message,
                        hint(e.code)
                    ),
                    Some(r) => Ok(Some(r)),
                    None => bail!("empty response"),
                };
            }
        }
        Ok(None)
    })
    .await
}

/// What a connection turned away with `TOO_MANY_CONNECTIONS` means for a load test.
pub const TOO_MANY_CONNECTIONS_HINT: &str = "; the server caps connections per source \
    address (max_connections_per_addr, 256 by default) and per user (max_connections_per_user, \
    32): put the generator's source addresses (127.0.0.1 up to --sources) in the server's \
    trusted_addrs (FEIGE_TRUSTED_ADDRS=127.0.0.1,127.0.0.2,...; benches/scripts/servers.sh \
    does), or raise those caps in its config";

/// The hint for an error `code` that a load test's setup can run into, or nothing.
fn hint(code: i32) -> &'static str {
    if code == pb::ErrorCode::TooManyConnections as i32 {
        TOO_MANY_CONNECTIONS_HINT
    } else {
        ""
    }
}

/// What a send refused with `NOT_FRIENDS` means for a benchmark between strangers.
pub const NOT_FRIENDS_HINT: &str = "the server refuses messages between strangers \
    (NOT_FRIENDS: its dm_policy is \"friends\", the default); for benchmarking, start it with \
    `feige-server --dm-policy anyone` (or dm_policy = \"anyone\" in its config file)";

/// Opens a Feige connection logged in with a session token (Hello carrying a Resume).
///
/// # Errors
/// The connection or the resume fails.
pub async fn feige_resume(
    addr: SocketAddr,
    src: Option<IpAddr>,
    token: &[u8],
) -> anyhow::Result<(TcpStream, BytesMut)> {
    let mut s = tcp_connect(addr, src).await?;
    let mut buf = BytesMut::new();
    let hello = pb::Hello {
        major: feige_protocol::PROTOCOL_MAJOR,
        client: "feige-bench".into(),
        auth: Some(pb::hello::Auth::Resume(pb::Resume {
            token: token.to_vec().into(),
            device: String::new(),
        })),
        ..Default::default()
    };
    match feige_call(&mut s, &mut buf, 1, RequestKind::Hello(hello)).await? {
        ResponseResult::Hello(h) if h.session.is_some() => Ok((s, buf)),
        other => bail!("unexpected answer to Hello with resume: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// MQTT 3.1.1

fn mqtt_len(mut n: usize, out: &mut BytesMut) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.put_u8(b);
        if n == 0 {
            break;
        }
    }
}

fn mqtt_str(s: &[u8], out: &mut BytesMut) {
    out.put_u16(s.len() as u16);
    out.put_slice(s);
}

/// Splits one whole MQTT packet off `buf`: (first byte, body).
fn mqtt_packet(buf: &mut BytesMut) -> anyhow::Result<Option<(u8, Bytes)>> {
    let mut len = 0usize;
    let mut mult = 1usize;
    let mut i = 1;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len += (b & 0x7f) as usize * mult;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        mult *= 128;
        if i > 4 {
            bail!("malformed MQTT remaining length");
        }
    }
    if buf.len() < i + len {
        return Ok(None);
    }
    let first = buf[0];
    buf.advance(i);
    Ok(Some((first, buf.split_to(len).freeze())))
}

/// What a client receives besides nothing: its own address, or the fan-out group's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    /// Client `i`'s own: MQTT topic `u/i`, NATS subject `u.i` (Feige: its user id).
    Own,
    /// The one group: MQTT topic `g/0`, NATS subject `g.0` (Feige: the group's members).
    Group,
}

/// Where a message goes: client `i`, or the group (for Feige, its conversation id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// Client `i`.
    Client(usize),
    /// The group; for Feige, the group's conversation.
    Group(u64),
}

/// Opens an MQTT connection (clean session, no keep-alive) subscribed at `qos` to `u/idx`, or
/// to `g/0` for [`Subscription::Group`].
///
/// # Errors
/// The connection, CONNACK or SUBACK fails.
pub async fn mqtt_connect(
    addr: SocketAddr,
    src: Option<IpAddr>,
    idx: usize,
    sub: Subscription,
    qos: u8,
    run_id: u32,
) -> anyhow::Result<(TcpStream, BytesMut)> {
    let mut s = tcp_connect(addr, src).await?;
    let client_id = format!("fb{run_id}-{idx}");
    let mut out = BytesMut::new();
    let mut body = BytesMut::new();
    mqtt_str(b"MQTT", &mut body);
    body.put_u8(4); // protocol level 3.1.1
    body.put_u8(0x02); // clean session
    body.put_u16(0); // keep-alive off
    mqtt_str(client_id.as_bytes(), &mut body);
    out.put_u8(0x10);
    mqtt_len(body.len(), &mut out);
    out.put_slice(&body);
    body.clear();
    body.put_u16(1); // packet id
    let topic = match sub {
        Subscription::Own => format!("u/{idx}"),
        Subscription::Group => "g/0".to_owned(),
    };
    mqtt_str(topic.as_bytes(), &mut body);
    body.put_u8(qos);
    out.put_u8(0x82);
    mqtt_len(body.len(), &mut out);
    out.put_slice(&body);
    s.write_all(&out).await?;
    let mut buf = BytesMut::new();
    let (first, connack) = read_until(&mut s, &mut buf, mqtt_packet).await?;
    if first != 0x20 || connack.get(1) != Some(&0) {
        bail!("MQTT CONNACK refused: {first:#x} {connack:?}");
    }
    let (first, suback) = read_until(&mut s, &mut buf, mqtt_packet).await?;
    if first != 0x90 || suback.get(2).is_none_or(|&rc| rc == 0x80) {
        bail!("MQTT SUBACK refused: {first:#x} {suback:?}");
    }
    Ok((s, buf))
}

// ---------------------------------------------------------------------------------------------
// NATS

/// Splits one whole NATS protocol line (and a MSG's payload) off `buf`.
fn nats_op(buf: &mut BytesMut) -> anyhow::Result<Option<NatsOp>> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = &buf[..eol];
    if line.starts_with(b"MSG ") {
        // MSG <subject> <sid> [reply-to] <#bytes>
        let n: usize = std::str::from_utf8(line)?
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .context("malformed NATS MSG line")?;
        if buf.len() < eol + 2 + n + 2 {
            return Ok(None);
        }
        buf.advance(eol + 2);
        let payload = buf.split_to(n).freeze();
        buf.advance(2);
        return Ok(Some(NatsOp::Msg(payload)));
    }
    let op = if line == b"PING" {
        NatsOp::Ping
    } else if line.starts_with(b"-ERR") {
        bail!("NATS error: {}", String::from_utf8_lossy(line));
    } else if line == b"PONG" {
        NatsOp::Pong
    } else {
        NatsOp::Other
    };
    buf.advance(eol + 2);
    Ok(Some(op))
}

enum NatsOp {
    Msg(Bytes),
    Ping,
    Pong,
    Other,
}

/// Opens a core NATS connection subscribed to `u.idx`, or to `g.0` for
/// [`Subscription::Group`] (confirmed by a PING/PONG round trip).
///
/// # Errors
/// The connection fails or the server reports an error.
pub async fn nats_connect(
    addr: SocketAddr,
    src: Option<IpAddr>,
    idx: usize,
    sub: Subscription,
) -> anyhow::Result<(TcpStream, BytesMut)> {
    let mut s = tcp_connect(addr, src).await?;
    let mut buf = BytesMut::new();
    let subject = match sub {
        Subscription::Own => format!("u.{idx}"),
        Subscription::Group => "g.0".to_owned(),
    };
    let hello = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"echo\":false,\"lang\":\"rust\",\"version\":\"0\",\"protocol\":1,\"name\":\"fb{idx}\"}}\r\nSUB {subject} 1\r\nPING\r\n"
    );
    s.write_all(hello.as_bytes()).await?;
    loop {
        match read_until(&mut s, &mut buf, nats_op).await? {
            NatsOp::Pong => return Ok((s, buf)),
            NatsOp::Ping => s.write_all(b"PONG\r\n").await?,
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------

impl Wire {
    /// Appends a message with `payload` for client `to`.
    pub fn encode_send(
        &mut self,
        to: usize,
        client_msg_id: u64,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        self.encode_to(Dest::Client(to), client_msg_id, payload, out);
    }

    /// Appends a message with `payload` for `dest`.
    pub fn encode_to(
        &mut self,
        dest: Dest,
        client_msg_id: u64,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        match self {
            Wire::Feige { ids, next_rid } => {
                let (to_user, conversation_id) = match dest {
                    Dest::Client(to) => (ids[to], 0),
                    Dest::Group(conv) => (0, conv),
                };
                let env = Envelope::request(
                    *next_rid,
                    RequestKind::SendMessage(pb::SendMessage {
                        to_user,
                        conversation_id,
                        client_msg_id,
                        text: String::from_utf8_lossy(payload).into_owned(),
                        ..Default::default()
                    }),
                );
                *next_rid += 1;
                frame::encode(&env, out);
            }
            Wire::Mqtt { qos, next_pid } => {
                let topic = match dest {
                    Dest::Client(to) => format!("u/{to}"),
                    Dest::Group(_) => "g/0".to_owned(),
                };
                let pid_len = if *qos > 0 { 2 } else { 0 };
                out.put_u8(0x30 | (*qos << 1));
                mqtt_len(2 + topic.len() + pid_len + payload.len(), out);
                mqtt_str(topic.as_bytes(), out);
                if *qos > 0 {
                    out.put_u16(*next_pid);
                    *next_pid = next_pid.checked_add(1).unwrap_or(1);
                }
                out.put_slice(payload);
            }
            Wire::Nats => {
                let subject = match dest {
                    Dest::Client(to) => format!("u.{to}"),
                    Dest::Group(_) => "g.0".to_owned(),
                };
                out.put_slice(format!("PUB {subject} {}\r\n", payload.len()).as_bytes());
                out.put_slice(payload);
                out.put_slice(b"\r\n");
            }
        }
    }

    /// A heartbeat the protocol needs from an idle client (Feige ping), if any.
    pub fn heartbeat(&mut self, out: &mut BytesMut) {
        if let Wire::Feige { next_rid, .. } = self {
            frame::encode(
                &Envelope::request(*next_rid, RequestKind::Ping(pb::Ping { nonce: 0 })),
                out,
            );
            *next_rid += 1;
        }
    }

    /// Takes one event out of `buf`; replies the protocol requires (MQTT PUBACK, NATS PONG)
    /// are appended to `out`.
    ///
    /// # Errors
    /// A malformed stream, an error response or a kick.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        out: &mut BytesMut,
    ) -> anyhow::Result<Option<Event>> {
        match self {
            Wire::Feige { .. } => {
                let Some(total) = frame::check(buf, usize::MAX)? else {
                    return Ok(None);
                };
                // A delivery is read for its text alone, as the MQTT and NATS paths read only
                // the payload; every other frame is decoded in full.
                if let Some(text) = pushed_text(&buf[frame::HEADER_LEN..total]) {
                    let frame = buf.split_to(total).freeze();
                    let at = frame::HEADER_LEN;
                    return Ok(Some(Event::Delivered(
                        frame.slice(at + text.start..at + text.end),
                    )));
                }
                let Some(env) = frame::decode(buf, usize::MAX)? else {
                    return Ok(None);
                };
                Ok(Some(match env.body {
                    Some(Body::Push(pb::Push {
                        kind: Some(PushKind::Message(m)),
                    })) => Event::Delivered(Bytes::from(m.text.into_bytes())),
                    Some(Body::Push(pb::Push {
                        kind: Some(PushKind::Kicked(k)),
                    })) => bail!("kicked by the server: {} ({})", k.reason, k.code),
                    Some(Body::Response(pb::Response {
                        result: Some(ResponseResult::Send(_)),
                    })) => Event::Acked,
                    Some(Body::Response(pb::Response {
                        result: Some(ResponseResult::Error(e)),
                    })) if e.code == pb::ErrorCode::NotFriends as i32 => bail!(NOT_FRIENDS_HINT),
                    Some(Body::Response(pb::Response {
                        result: Some(ResponseResult::Error(e)),
                    })) => bail!(
                        "request {} failed: {} ({})",
                        env.request_id,
                        e.message,
                        e.code
                    ),
                    _ => Event::Other,
                }))
            }
            Wire::Mqtt { .. } => {
                let Some((first, mut body)) = mqtt_packet(buf)? else {
                    return Ok(None);
                };
                Ok(Some(match first >> 4 {
                    3 => {
                        let qos = (first >> 1) & 3;
                        if body.len() < 2 {
                            bail!("short MQTT PUBLISH");
                        }
                        let tlen = body.get_u16() as usize;
                        if body.len() < tlen {
                            bail!("short MQTT PUBLISH topic");
                        }
                        body.advance(tlen);
                        if qos > 0 {
                            if body.len() < 2 {
                                bail!("short MQTT PUBLISH id");
                            }
                            let pid = body.get_u16();
                            out.put_slice(&[0x40, 0x02]);
                            out.put_u16(pid);
                        }
                        Event::Delivered(body)
                    }
                    4 => Event::Acked,
                    _ => Event::Other,
                }))
            }
            Wire::Nats => Ok(nats_op(buf)?.map(|op| match op {
                NatsOp::Msg(p) => Event::Delivered(p),
                NatsOp::Ping => {
                    out.put_slice(b"PONG\r\n");
                    Event::Other
                }
                NatsOp::Pong | NatsOp::Other => Event::Other,
            })),
        }
    }
}

/// The bench's 100-byte message text: send time (µs since the run's epoch), sender index and
/// the sender's sequence number, then ordinary words.
pub fn payload(ts_us: u64, sender: usize, seq: u64, out: &mut Vec<u8>) {
    const FILLER: &[u8] =
        b"the quick brown fox jumps over the lazy dog while the pigeon carries the mail home again and again";
    out.clear();
    use std::io::Write;
    let _ = write!(out, "{ts_us} {sender} {seq} ");
    let need = 100usize.saturating_sub(out.len());
    out.extend_from_slice(&FILLER[..need.min(FILLER.len())]);
}

/// Reads (send time, sender, sequence) back from a payload.
pub fn parse_payload(p: &[u8]) -> Option<(u64, usize, u64)> {
    let mut it = p.split(|&b| b == b' ');
    let mut num = || -> Option<u64> { std::str::from_utf8(it.next()?).ok()?.parse().ok() };
    Some((num()?, num()? as usize, num()?))
}

#[cfg(test)]
mod tests;
