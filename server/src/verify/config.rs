//! The `[codes]`, `[mail]` and `[sms]` tables of the server's TOML file: the codes' lifetime
//! and limits, and how each channel sends them.

use std::path::PathBuf;

use serde::Deserialize;

/// What registration requires (`registration_verify`), beside `registration`'s approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationVerify {
    /// A username and a password (an e-mail or phone with a code is optional).
    None,
    /// A verified e-mail: Register carries `email` and its code.
    Email,
    /// A verified phone: Register carries `phone` and its code (or LoginCode by phone
    /// creates the account).
    Phone,
}

/// Verification codes (`[codes]`). Unknown keys are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodesConfig {
    /// How long a code is valid, in milliseconds.
    pub ttl_ms: u64,
    /// Wrong tries of one code before it is void.
    pub max_attempts: u32,
    /// After a code is sent to an address, no other for this many milliseconds.
    pub cooldown_ms: u64,
    /// Codes sent to one e-mail address or phone per hour.
    pub per_destination_per_hour: u32,
    /// Codes asked for from one client address (an IPv6 /64) per hour; `trusted_addrs` are
    /// exempt.
    pub per_address_per_hour: u32,
    /// Longest one e-mail or SMS may take to send, in milliseconds.
    pub send_timeout_ms: u64,
    /// Sends in progress at once, at most (`BUSY` beyond).
    pub max_sending: usize,
}

impl Default for CodesConfig {
    fn default() -> Self {
        CodesConfig {
            ttl_ms: 300_000,
            max_attempts: 5,
            cooldown_ms: 60_000,
            per_destination_per_hour: 5,
            per_address_per_hour: 20,
            send_timeout_ms: 10_000,
            max_sending: 8,
        }
    }
}

/// How the e-mail channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailSender {
    /// Writes the code to the server log (development).
    Log,
    /// SMTP, as `[mail]` says.
    Smtp,
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain TCP, upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain TCP, no TLS (a local relay).
    Plain,
}

/// The e-mail channel (`[mail]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `"log"` (the default) or `"smtp"`.
    pub sender: MailSender,
    /// The SMTP server's host name.
    pub smtp_host: String,
    /// Its port; 0: 587 with STARTTLS, 465 with TLS, 25 plain.
    pub smtp_port: u16,
    /// `"starttls"` (the default), `"tls"` or `"plain"`.
    pub security: SmtpSecurity,
    /// A PEM file of a certificate authority the SMTP server's certificate may also be
    /// signed by (a private relay); the public web roots are trusted anyway.
    pub ca_file: Option<PathBuf>,
    /// The SMTP user; empty: no authentication.
    pub username: String,
    /// The SMTP password.
    pub password: String,
    /// The sender, `"Feige <noreply@example.com>"`.
    pub from: String,
    /// The subject line.
    pub subject: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            sender: MailSender::Log,
            smtp_host: String::new(),
            smtp_port: 0,
            security: SmtpSecurity::Starttls,
            ca_file: None,
            username: String::new(),
            password: String::new(),
            from: "Feige <noreply@localhost>".into(),
            subject: "Your Feige code".into(),
        }
    }
}

/// How the SMS channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsSender {
    /// Writes the code to the server log (development).
    Log,
    /// An HTTP request to an SMS gateway, as `[sms]` says.
    Http,
}

/// The HTTP method of the SMS gateway's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SmsMethod {
    /// The template's URL is fetched.
    Get,
    /// The URL is posted `body` (its template filled in).
    Post,
}

/// The SMS channel (`[sms]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// `"log"` (the default) or `"http"`.
    pub sender: SmsSender,
    /// The gateway's URL; `{to}`, `{code}` and `{key}` are replaced (percent-encoded).
    pub url: String,
    /// `"GET"` (the default) or `"POST"`.
    pub method: SmsMethod,
    /// The gateway's API key, for `{key}`.
    pub key: String,
    /// POST only: the body, with the same placeholders (not encoded).
    pub body: String,
    /// POST only: the body's content type.
    pub content_type: String,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            sender: SmsSender::Log,
            url: String::new(),
            method: SmsMethod::Get,
            key: String::new(),
            body: String::new(),
            content_type: "application/json".into(),
        }
    }
}

/// Checks the three tables.
///
/// # Errors
/// The first problem, as text naming the key.
pub(crate) fn validate(
    codes: &CodesConfig,
    mail: &MailConfig,
    sms: &SmsConfig,
) -> Result<(), String> {
    if codes.ttl_ms < 100 || codes.ttl_ms > 86_400_000 {
        return Err("codes.ttl_ms: 100..=86400000".into());
    }
    if codes.max_attempts == 0 || codes.per_destination_per_hour == 0 {
        return Err("codes.max_attempts, codes.per_destination_per_hour: at least 1".into());
    }
    if codes.per_address_per_hour == 0 || codes.max_sending == 0 {
        return Err("codes.per_address_per_hour, codes.max_sending: at least 1".into());
    }
    if codes.send_timeout_ms < 100 || codes.cooldown_ms > 86_400_000 {
        return Err("codes.send_timeout_ms: at least 100; codes.cooldown_ms: at most a day".into());
    }
    if mail.sender == MailSender::Smtp && (mail.smtp_host.is_empty() || mail.from.is_empty()) {
        return Err("mail.smtp_host, mail.from: needed with sender = \"smtp\"".into());
    }
    if mail.sender == MailSender::Smtp && mail.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err("mail.from: not an address (\"Name <user@example.com>\")".into());
    }
    if sms.sender == SmsSender::Http
        && !(sms.url.starts_with("http://") || sms.url.starts_with("https://"))
    {
        return Err("sms.url: an http:// or https:// URL, needed with sender = \"http\"".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_log_and_tables_parse() {
        let (c, m, s) = (
            CodesConfig::default(),
            MailConfig::default(),
            SmsConfig::default(),
        );
        assert!(validate(&c, &m, &s).is_ok());
        assert_eq!((m.sender, s.sender), (MailSender::Log, SmsSender::Log));
        let m: MailConfig =
            toml::from_str("sender = \"smtp\"\nsmtp_host = \"mail\"\nsecurity = \"tls\"").unwrap();
        assert_eq!(m.security, SmtpSecurity::Tls);
        assert!(validate(&c, &m, &s).is_ok());
        let s: SmsConfig = toml::from_str("sender = \"http\"\nmethod = \"POST\"").unwrap();
        assert!(validate(&c, &MailConfig::default(), &s).is_err(), "no url");
        assert!(toml::from_str::<SmsConfig>("sender = \"pigeon\"").is_err());
        let no_host: MailConfig = toml::from_str("sender = \"smtp\"").unwrap();
        assert!(validate(&c, &no_host, &SmsConfig::default()).is_err());
    }

    /// The server's settings take `registration_verify` and the three tables.
    #[test]
    fn the_server_config_takes_the_keys() {
        let c = crate::Config::default();
        assert_eq!(c.registration_verify, RegistrationVerify::None);
        let verify: crate::Config = toml::from_str(
            "registration_verify = \"phone\"\n[codes]\nttl_ms = 1000\n[mail]\nsender = \"log\"",
        )
        .unwrap();
        assert_eq!(verify.registration_verify, RegistrationVerify::Phone);
        assert_eq!(
            (verify.codes.ttl_ms, verify.mail.sender),
            (1000, MailSender::Log)
        );
        assert!(verify.validate().is_ok());
        assert!(toml::from_str::<crate::Config>("registration_verify = \"fax\"").is_err());
        assert!(toml::from_str::<crate::Config>("[codes]\nttl = 1").is_err());
    }
}
