//! What the verification-code tests send codes to: an SMTP sink (plain TCP on port 0, speaking
//! enough SMTP for lettre: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT, and STARTTLS or TLS
//! from the first byte with a test certificate) that keeps each e-mail it receives, and a fake
//! SMS gateway (HTTP/1.1 on port 0) that keeps each request. Either can be told to refuse
//! (SMTP 550 to RCPT; HTTP 500).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use feige_server::verify::config::{MailSender, SmsSender, SmtpSecurity};
use feige_server::Config;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Mutex};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::tls::TestPki;

/// How the sink speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    /// Plain SMTP.
    Plain,
    /// Plain, upgraded after STARTTLS (which it advertises).
    Starttls,
    /// TLS from the first byte.
    Wrapper,
}

/// One e-mail the sink received.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message as sent after DATA (headers and body), dot-unstuffed.
    pub data: String,
}

impl Mail {
    /// The 6-digit code in the mail ("... code is 123456").
    pub fn code(&self) -> String {
        code_after(&self.data, "code is ").expect("no code in the e-mail")
    }
}

/// The first 6 digits after `marker` in `text`.
pub fn code_after(text: &str, marker: &str) -> Option<String> {
    let at = text.find(marker)? + marker.len();
    let code: String = text[at..].chars().take(6).collect();
    (code.len() == 6 && code.chars().all(|c| c.is_ascii_digit())).then_some(code)
}

/// An SMTP server that keeps what it receives.
pub struct SmtpSink {
    /// Its port on 127.0.0.1.
    pub port: u16,
    refuse: Arc<AtomicBool>,
    rx: Mutex<mpsc::UnboundedReceiver<Mail>>,
    tls: SinkTls,
    logins: Arc<std::sync::Mutex<Vec<String>>>,
}

impl SmtpSink {
    /// Listens on 127.0.0.1:0 and serves each connection on its own task, in plain SMTP.
    pub async fn start() -> SmtpSink {
        Self::start_tls(SinkTls::Plain, None).await
    }

    /// As [`SmtpSink::start`], with TLS as `tls` says, under `pki`'s certificate for
    /// `localhost` (needed unless `tls` is `Plain`).
    pub async fn start_tls(tls: SinkTls, pki: Option<&TestPki>) -> SmtpSink {
        let acceptor = pki.map(acceptor);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let refuse = Arc::new(AtomicBool::new(false));
        let logins = Arc::new(std::sync::Mutex::new(Vec::new()));
        let r = Session {
            refuse: refuse.clone(),
            logins: logins.clone(),
        };
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (tx, r, acceptor) = (tx.clone(), r.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let acceptor = acceptor.filter(|_| tls != SinkTls::Plain);
                    match (tls, acceptor) {
                        (SinkTls::Wrapper, Some(a)) => {
                            if let Ok(s) = a.accept(socket).await {
                                smtp_session(s, tx, r, (false, false)).await;
                            }
                        }
                        (SinkTls::Starttls, Some(a)) => {
                            if let Some(plain) =
                                smtp_session(socket, tx.clone(), r.clone(), (true, false)).await
                            {
                                if let Ok(s) = a.accept(plain).await {
                                    smtp_session(s, tx, r, (false, true)).await;
                                }
                            }
                        }
                        _ => {
                            smtp_session(socket, tx, r, (false, false)).await;
                        }
                    }
                });
            }
        });
        SmtpSink {
            port,
            refuse,
            rx: Mutex::new(rx),
            tls,
            logins,
        }
    }

    /// The `user:password` of each AUTH PLAIN the sink accepted, oldest first.
    pub fn logins(&self) -> Vec<String> {
        self.logins.lock().unwrap().clone()
    }

    /// From now on, refuse recipients (550), or accept them again.
    pub fn refuse(&self, on: bool) {
        self.refuse.store(on, Ordering::SeqCst);
    }

    /// The next e-mail received; panics after 10 s.
    pub async fn next(&self) -> Mail {
        let mut rx = self.rx.lock().await;
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no e-mail within 10 s")
            .expect("the sink stopped")
    }

    /// Whether an e-mail arrives within `ms`.
    pub async fn nothing_within(&self, ms: u64) -> bool {
        let mut rx = self.rx.lock().await;
        tokio::time::timeout(Duration::from_millis(ms), rx.recv())
            .await
            .is_err()
    }

    /// Sets `config`'s e-mail channel to this sink (no authentication; with TLS, the test
    /// certificate is for 127.0.0.1 too: set `mail.ca_file` to the test CA).
    pub fn configure(&self, config: &mut Config) {
        config.mail.sender = MailSender::Smtp;
        config.mail.smtp_host = "127.0.0.1".into();
        config.mail.smtp_port = self.port;
        config.mail.security = match self.tls {
            SinkTls::Plain => SmtpSecurity::Plain,
            SinkTls::Starttls => SmtpSecurity::Starttls,
            SinkTls::Wrapper => SmtpSecurity::Tls,
        };
        config.mail.from = "Feige <noreply@feige.test>".into();
    }
}

/// A TLS acceptor with `pki`'s server certificate (rustls on ring, as the server's).
fn acceptor(pki: &TestPki) -> TlsAcceptor {
    let cert = std::fs::read(&pki.cert).unwrap();
    let key = std::fs::read(&pki.key).unwrap();
    let chain = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(&key).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// Serves SMTP on `socket` until QUIT or the end; with `starttls`, advertises STARTTLS and,
/// when the client asks, answers 220 and hands the plain stream back for the handshake;
/// `upgraded`: the stream is that handshake's, so no greeting.
/// What the sessions of one sink share.
#[derive(Clone)]
struct Session {
    refuse: Arc<AtomicBool>,
    logins: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn smtp_session<S: AsyncRead + AsyncWrite + Unpin>(
    socket: S,
    tx: mpsc::UnboundedSender<Mail>,
    shared: Session,
    (starttls, upgraded): (bool, bool),
) -> Option<S> {
    let refuse = shared.refuse;
    let mut lines = BufReader::new(socket);
    // After STARTTLS the client speaks first (EHLO again): no second greeting.
    if !upgraded
        && lines
            .get_mut()
            .write_all(b"220 sink ESMTP\r\n")
            .await
            .is_err()
    {
        return None;
    }
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let upper = line.to_ascii_uppercase();
        let answer: String = if upper.starts_with("EHLO") && starttls {
            "250-sink\r\n250-STARTTLS\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n".into()
        } else if upper.starts_with("STARTTLS") && starttls {
            lines.get_mut().write_all(b"220 go ahead\r\n").await.ok()?;
            return Some(lines.into_inner());
        } else if upper.starts_with("EHLO") {
            "250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n".into()
        } else if upper.starts_with("AUTH PLAIN ") {
            use base64::Engine;
            let b64 = line[11..].trim();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default();
            let parts: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let login = parts[1..].join(":");
            shared.logins.lock().unwrap().push(login);
            "235 authenticated\r\n".into()
        } else if upper.starts_with("HELO")
            || upper.starts_with("MAIL")
            || upper.starts_with("NOOP")
        {
            "250 OK\r\n".into()
        } else if upper.starts_with("RSET") {
            to.clear();
            "250 OK\r\n".into()
        } else if upper.starts_with("RCPT") {
            if refuse.load(Ordering::SeqCst) {
                "550 mailbox unavailable\r\n".into()
            } else {
                let addr = line
                    .split_once('<')
                    .and_then(|(_, r)| r.split_once('>'))
                    .map(|(a, _)| a.to_owned())
                    .unwrap_or_default();
                to.push(addr);
                "250 OK\r\n".into()
            }
        } else if upper.starts_with("DATA") {
            lines.get_mut().write_all(b"354 go ahead\r\n").await.ok()?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                match lines.read_line(&mut l).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            let _ = tx.send(Mail {
                to: std::mem::take(&mut to),
                data,
            });
            "250 queued\r\n".into()
        } else if upper.starts_with("QUIT") {
            let _ = lines.get_mut().write_all(b"221 bye\r\n").await;
            let _ = lines.get_mut().shutdown().await;
            return None;
        } else {
            "502 not implemented\r\n".into()
        };
        lines.get_mut().write_all(answer.as_bytes()).await.ok()?;
    }
}

/// One request the SMS gateway received.
#[derive(Debug, Clone)]
pub struct SmsRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// The body.
    pub body: String,
}

impl SmsRequest {
    /// The code in the query (`code=123456`).
    pub fn code(&self) -> String {
        code_after(&self.target, "code=").expect("no code in the SMS request")
    }
}

/// A fake SMS gateway: answers 200, or 500 when told to fail.
pub struct SmsGateway {
    /// Its port on 127.0.0.1.
    pub port: u16,
    fail: Arc<AtomicBool>,
    rx: Mutex<mpsc::UnboundedReceiver<SmsRequest>>,
}

impl SmsGateway {
    /// Listens on 127.0.0.1:0.
    pub async fn start() -> SmsGateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let fail = Arc::new(AtomicBool::new(false));
        let f = fail.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(http_exchange(socket, tx.clone(), f.clone()));
            }
        });
        SmsGateway {
            port,
            fail,
            rx: Mutex::new(rx),
        }
    }

    /// From now on, answer 500 (or 200 again).
    pub fn fail(&self, on: bool) {
        self.fail.store(on, Ordering::SeqCst);
    }

    /// The next request received; panics after 10 s.
    pub async fn next(&self) -> SmsRequest {
        let mut rx = self.rx.lock().await;
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no SMS request within 10 s")
            .expect("the gateway stopped")
    }

    /// Sets `config`'s SMS channel to this gateway: `GET /send?to={to}&code={code}&key={key}`
    /// with key `test-key`.
    pub fn configure(&self, config: &mut Config) {
        config.sms.sender = SmsSender::Http;
        config.sms.url = format!(
            "http://127.0.0.1:{}/send?to={{to}}&code={{code}}&key={{key}}",
            self.port
        );
        config.sms.key = "test-key".into();
    }
}

async fn http_exchange(
    mut socket: tokio::net::TcpStream,
    tx: mpsc::UnboundedSender<SmsRequest>,
    fail: Arc<AtomicBool>,
) {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let request = SmsRequest {
        method: first.next().unwrap_or_default().to_owned(),
        target: first.next().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string(),
    };
    let failing = fail.load(Ordering::SeqCst);
    if !failing {
        let _ = tx.send(request);
    }
    let answer: &[u8] = if failing {
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\nConnection: close\r\n\r\nbroken"
    } else {
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"
    };
    let _ = socket.write_all(answer).await;
    let _ = socket.shutdown().await;
}
