//! The code senders, behind [`CodeSender`]: the server log (development), e-mail over SMTP
//! (lettre's blocking transport) and SMS over an HTTP gateway (ureq). Each is blocking and is
//! called on a blocking thread, never on the reactor, with its own I/O timeout.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use super::config::{MailConfig, SmsConfig, SmsMethod, SmtpSecurity};
use super::Purpose;

/// Most bytes of an SMS gateway's answer read (into the error text when it fails).
const MAX_ANSWER: u64 = 4096;

/// Why a code could not be sent (logged; the client gets `SENDER_FAILED`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// The e-mail could not be built (a bad address) or the SMTP exchange failed.
    #[error("smtp: {0}")]
    Smtp(String),
    /// The SMS gateway could not be reached or did not answer 2xx.
    #[error("sms gateway: {0}")]
    Http(String),
}

/// Sends one code to one destination. Blocking.
pub(crate) trait CodeSender: Send + Sync {
    /// The sender's name, for logs.
    fn name(&self) -> &'static str;
    /// Sends `code` for `purpose` to `to` (a normalized e-mail address or phone number).
    ///
    /// # Errors
    /// [`SendError`] when it was not handed over.
    fn send(&self, to: &str, code: &str, purpose: Purpose) -> Result<(), SendError>;
}

/// Writes the code to the server log: the default, so a fresh server works without a mail
/// or SMS account. Not for production: anyone reading the log can use the codes.
pub(crate) struct LogSender;

impl CodeSender for LogSender {
    fn name(&self) -> &'static str {
        "log"
    }

    fn send(&self, to: &str, code: &str, purpose: Purpose) -> Result<(), SendError> {
        tracing::info!(
            to,
            code,
            purpose = purpose.name(),
            "verification code (log sender)"
        );
        Ok(())
    }
}

/// E-mail over SMTP.
pub(crate) struct SmtpSender {
    transport: SmtpTransport,
    from: lettre::message::Mailbox,
    subject: String,
}

impl SmtpSender {
    /// A sender with `[mail]`'s settings; each send opens its own connection. Reads
    /// `mail.ca_file`: call it off the reactor.
    ///
    /// # Errors
    /// A bad `from` address, an unreadable `ca_file`, or TLS settings.
    pub fn new(c: &MailConfig, timeout: Duration) -> Result<SmtpSender, SendError> {
        let port = match (c.smtp_port, c.security) {
            (0, SmtpSecurity::Starttls) => 587,
            (0, SmtpSecurity::Tls) => 465,
            (0, SmtpSecurity::Plain) => 25,
            (p, _) => p,
        };
        let ca = match &c.ca_file {
            Some(path) => {
                let bad = |e: &dyn std::fmt::Display| {
                    SendError::Smtp(format!("mail.ca_file {}: {e}", path.display()))
                };
                let pem = std::fs::read(path).map_err(|e| bad(&e))?;
                Some(Certificate::from_pem(&pem).map_err(|e| bad(&e))?)
            }
            None => None,
        };
        let tls = || {
            let mut b = TlsParameters::builder(c.smtp_host.clone());
            if let Some(ca) = ca.clone() {
                b = b.add_root_certificate(ca);
            }
            b.build().map_err(|e| SendError::Smtp(e.to_string()))
        };
        let tls = match c.security {
            SmtpSecurity::Starttls => Tls::Required(tls()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls()?),
            SmtpSecurity::Plain => Tls::None,
        };
        let mut builder = SmtpTransport::builder_dangerous(&c.smtp_host)
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        if !c.username.is_empty() {
            builder = builder.credentials(Credentials::new(c.username.clone(), c.password.clone()));
        }
        let from = c
            .from
            .parse()
            .map_err(|e| SendError::Smtp(format!("mail.from: {e}")))?;
        Ok(SmtpSender {
            transport: builder.build(),
            from,
            subject: c.subject.clone(),
        })
    }
}

impl CodeSender for SmtpSender {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send(&self, to: &str, code: &str, purpose: Purpose) -> Result<(), SendError> {
        let to = to
            .parse()
            .map_err(|e| SendError::Smtp(format!("address {to:?}: {e}")))?;
        let body = format!(
            "Your Feige code is {code}.\n\nIt is valid for a few minutes, for {}. If you did \
             not ask for it, ignore this e-mail.\n",
            purpose.describe()
        );
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("{} {code}", self.subject))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| SendError::Smtp(e.to_string()))?;
        self.transport
            .send(&email)
            .map(|_| ())
            .map_err(|e| SendError::Smtp(e.to_string()))
    }
}

/// SMS through an HTTP gateway: the URL template (and for POST the body template) filled with
/// `{to}`, `{code}` and `{key}`; any 2xx answer counts as sent.
pub(crate) struct SmsSender {
    agent: ureq::Agent,
    config: SmsConfig,
}

impl SmsSender {
    /// A sender with `[sms]`'s settings.
    pub fn new(config: &SmsConfig, timeout: Duration) -> SmsSender {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        SmsSender {
            agent,
            config: config.clone(),
        }
    }
}

/// `template` with the placeholders replaced by `encode`d values.
fn fill(template: &str, to: &str, code: &str, key: &str, encode: fn(&str) -> String) -> String {
    template
        .replace("{to}", &encode(to))
        .replace("{code}", &encode(code))
        .replace("{key}", &encode(key))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl CodeSender for SmsSender {
    fn name(&self) -> &'static str {
        "sms-http"
    }

    fn send(&self, to: &str, code: &str, _purpose: Purpose) -> Result<(), SendError> {
        let c = &self.config;
        let url = fill(&c.url, to, code, &c.key, percent);
        let sent = match c.method {
            SmsMethod::Get => self.agent.get(&url).call(),
            SmsMethod::Post => {
                let body = fill(&c.body, to, code, &c.key, str::to_owned);
                self.agent
                    .post(&url)
                    .content_type(c.content_type.as_str())
                    .send(body)
            }
        };
        let mut response = sent.map_err(|e| SendError::Http(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .unwrap_or_default();
        let head: String = text.chars().take(120).collect();
        Err(SendError::Http(format!("HTTP {status}: {head}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_and_encoded() {
        let url = fill(
            "http://gw/send?to={to}&text={code}&k={key}",
            "+86 138",
            "012345",
            "a&b",
            percent,
        );
        assert_eq!(url, "http://gw/send?to=%2B86%20138&text=012345&k=a%26b");
        let body = fill("{\"to\":\"{to}\"}", "+1", "1", "", str::to_owned);
        assert_eq!(body, "{\"to\":\"+1\"}");
    }
}
