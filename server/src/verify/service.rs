//! The code service in `Shared`: the book, the senders, and a send off the reactor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::book::{Book, BookLimits, CodeKey};
use super::config::{MailSender, SmsSender};
use super::send::{self, CodeSender, LogSender};
use super::{Channel, Sent, VerifyError};
use crate::limits::AddrKey;
use crate::Config;

/// The code service (in `Shared`).
pub(crate) struct Verify {
    book: Book,
    email: Arc<dyn CodeSender>,
    sms: Arc<dyn CodeSender>,
    sending: Arc<Semaphore>,
    timeout: Duration,
    cooldown: Duration,
    ttl: Duration,
}

impl Verify {
    /// The service with `config`'s settings and senders.
    ///
    /// # Errors
    /// A sender's settings are unusable, or the random source failed.
    pub fn new(config: &Config) -> Result<Verify, String> {
        let c = &config.codes;
        let timeout = Duration::from_millis(c.send_timeout_ms);
        let email: Arc<dyn CodeSender> = match config.mail.sender {
            MailSender::Log => Arc::new(LogSender),
            MailSender::Smtp => {
                Arc::new(send::SmtpSender::new(&config.mail, timeout).map_err(|e| e.to_string())?)
            }
        };
        let sms: Arc<dyn CodeSender> = match config.sms.sender {
            SmsSender::Log => Arc::new(LogSender),
            SmsSender::Http => Arc::new(send::SmsSender::new(&config.sms, timeout)),
        };
        let limits = BookLimits {
            ttl: Duration::from_millis(c.ttl_ms),
            max_attempts: c.max_attempts,
            cooldown: Duration::from_millis(c.cooldown_ms),
            per_destination: c.per_destination_per_hour,
            per_address: c.per_address_per_hour,
        };
        Ok(Verify {
            book: Book::new(limits).map_err(|_| "random source failed".to_owned())?,
            email,
            sms,
            sending: Arc::new(Semaphore::new(c.max_sending)),
            timeout,
            cooldown: limits.cooldown,
            ttl: limits.ttl,
        })
    }

    /// Makes a code for `key`, charges the limits (`address` `None`: a trusted address) and
    /// sends it through `channel` on a blocking thread, within the send timeout. The code is
    /// kept only once it was sent; a failed send takes the charges back.
    ///
    /// # Errors
    /// [`VerifyError::Cooldown`], [`VerifyError::RateLimited`], [`VerifyError::Busy`],
    /// [`VerifyError::SendFailed`].
    pub async fn send(
        &self,
        key: CodeKey,
        channel: Channel,
        address: Option<AddrKey>,
    ) -> Result<Sent, VerifyError> {
        let permit = self
            .sending
            .clone()
            .try_acquire_owned()
            .map_err(|_| VerifyError::Busy)?;
        let reservation = self.book.reserve(key, address, Instant::now())?;
        let sender = match channel {
            Channel::Email => self.email.clone(),
            Channel::Sms => self.sms.clone(),
        };
        let (to, code, purpose) = (
            reservation.key.destination.clone(),
            reservation.code.clone(),
            reservation.key.purpose,
        );
        // The permit goes with the thread: a sender stuck past the timeout keeps its slot
        // until its own I/O timeout ends it.
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            sender
                .send(&to, &code, purpose)
                .map_err(|e| (sender.name(), e))
        });
        let outcome = match tokio::time::timeout(self.timeout, job).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err((name, e)))) => Err(format!("{name}: {e}")),
            Ok(Err(_)) => Err("the sending thread failed".to_owned()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        match outcome {
            Ok(()) => {
                self.book.commit(reservation, Instant::now())?;
                Ok(Sent {
                    cooldown: self.cooldown,
                    ttl: self.ttl,
                })
            }
            Err(why) => {
                tracing::warn!(purpose = purpose.name(), error = %why, "verification code not sent");
                self.book.cancel(reservation);
                Err(VerifyError::SendFailed(why))
            }
        }
    }

    /// Uses the code for `key` (see [`Book::redeem`]).
    ///
    /// # Errors
    /// [`VerifyError::Invalid`], [`VerifyError::Expired`], [`VerifyError::AttemptsExceeded`].
    pub fn redeem(&self, key: &CodeKey, code: &str) -> Result<(), VerifyError> {
        self.book.redeem(key, code, Instant::now())
    }
}
