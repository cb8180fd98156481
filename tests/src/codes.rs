//! What the verification-code tests send codes to: an SMTP sink (plain TCP on port 0, speaking
//! enough SMTP for lettre: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that keeps each
//! e-mail it receives, and a fake SMS gateway (HTTP/1.1 on port 0) that keeps each request.
//! Either can be told to refuse (SMTP 550 to RCPT; HTTP 500).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use feige_server::verify::config::{MailSender, SmsSender, SmtpSecurity};
use feige_server::Config;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Mutex};

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
}

impl SmtpSink {
    /// Listens on 127.0.0.1:0 and serves each connection on its own task.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let refuse = Arc::new(AtomicBool::new(false));
        let r = refuse.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(smtp_session(socket, tx.clone(), r.clone()));
            }
        });
        SmtpSink {
            port,
            refuse,
            rx: Mutex::new(rx),
        }
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

    /// Sets `config`'s e-mail channel to this sink (plain SMTP, no authentication).
    pub fn configure(&self, config: &mut Config) {
        config.mail.sender = MailSender::Smtp;
        config.mail.smtp_host = "127.0.0.1".into();
        config.mail.smtp_port = self.port;
        config.mail.security = SmtpSecurity::Plain;
        config.mail.from = "Feige <noreply@feige.test>".into();
    }
}

async fn smtp_session(
    socket: tokio::net::TcpStream,
    tx: mpsc::UnboundedSender<Mail>,
    refuse: Arc<AtomicBool>,
) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let upper = line.to_ascii_uppercase();
        let answer: String = if upper.starts_with("EHLO") {
            "250-sink\r\n250 8BITMIME\r\n".into()
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
            if write.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            loop {
                let mut l = String::new();
                match lines.read_line(&mut l).await {
                    Ok(0) | Err(_) => return,
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
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            "502 not implemented\r\n".into()
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
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
