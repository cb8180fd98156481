//! The cloud engine: a Baidu-style speech API over HTTPS, for languages the offline engine
//! lacks (Chinese). A token endpoint trades the API key and secret for an access token
//! (OAuth client credentials), kept until shortly before it expires and shared by the worker
//! threads; the recognition endpoint takes the PCM as base64 in a JSON body and answers
//! `{"err_no":0,"result":["…"]}`. A token the service no longer accepts is fetched anew once.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::audio::RATE;
use super::config::SpeechConfig;
use super::engine::{SpeechError, SpeechToText};

const NAME: &str = "cloud";
/// Most bytes of an answer read.
const MAX_ANSWER: u64 = 1 << 20;
/// `err_no` values that mean the token was refused (Baidu: 3302; 110 and 111 invalid or
/// expired token).
const TOKEN_REFUSED: [i64; 3] = [3302, 110, 111];

/// An access token and when to stop using it.
#[derive(Debug, Clone)]
struct Token {
    value: String,
    until: Instant,
}

/// The token the worker threads share.
#[derive(Debug, Clone, Default)]
pub struct TokenCache(Arc<Mutex<Option<Token>>>);

/// One worker's cloud engine; see the module docs.
#[derive(Debug)]
pub struct Cloud {
    agent: ureq::Agent,
    token_url: String,
    url: String,
    api_key: String,
    secret_key: String,
    cuid: String,
    dev_pid: u32,
    token: TokenCache,
}

impl Cloud {
    /// An engine with `config`'s cloud settings, sharing `token` with the other workers.
    pub fn new(config: &SpeechConfig, token: TokenCache) -> Cloud {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(config.timeout_ms)))
            .http_status_as_error(false)
            .build()
            .into();
        Cloud {
            agent,
            token_url: config.cloud_token_url.clone(),
            url: config.cloud_url.clone(),
            api_key: config.cloud_api_key.clone(),
            secret_key: config.cloud_secret_key.clone(),
            cuid: config.cloud_cuid.clone(),
            dev_pid: config.cloud_dev_pid,
            token,
        }
    }

    /// The cached token, or a new one from the token endpoint.
    fn token(&self) -> Result<String, SpeechError> {
        let mut cached = self.token.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = cached.as_ref().filter(|t| t.until > Instant::now()) {
            return Ok(t.value.clone());
        }
        let answer = self.exchange(
            self.agent
                .post(&self.token_url)
                .query("grant_type", "client_credentials")
                .query("client_id", &self.api_key)
                .query("client_secret", &self.secret_key)
                .send_empty(),
        )?;
        let Some(value) = answer["access_token"].as_str().filter(|s| !s.is_empty()) else {
            let why = answer["error_description"]
                .as_str()
                .or(answer["error"].as_str())
                .unwrap_or("no access_token in the answer");
            return Err(SpeechError::engine(NAME, format!("token refused: {why}")));
        };
        // Baidu's tokens live 30 days; stop a minute (or half the life) early.
        let life = Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(3600));
        let margin = Duration::from_secs(60).min(life / 2);
        *cached = Some(Token {
            value: value.to_owned(),
            until: Instant::now() + life - margin,
        });
        Ok(value.to_owned())
    }

    /// Sends `pcm` with `token`; `Ok(Err(code))` when the service refused the token.
    fn recognize(&self, token: &str, pcm: &[u8]) -> Result<Result<String, i64>, SpeechError> {
        let mut body = json!({
            "format": "pcm",
            "rate": RATE,
            "channel": 1,
            "cuid": self.cuid,
            "token": token,
            "speech": base64::engine::general_purpose::STANDARD.encode(pcm),
            "len": pcm.len(),
        });
        if self.dev_pid != 0 {
            body["dev_pid"] = json!(self.dev_pid);
        }
        let answer = self.exchange(
            self.agent
                .post(&self.url)
                .content_type("application/json")
                .send(body.to_string()),
        )?;
        let code = answer["err_no"].as_i64().unwrap_or(-1);
        if TOKEN_REFUSED.contains(&code) {
            return Ok(Err(code));
        }
        if code != 0 {
            let why = answer["err_msg"].as_str().unwrap_or("no err_msg");
            return Err(SpeechError::engine(NAME, format!("error {code}: {why}")));
        }
        let parts = answer["result"]
            .as_array()
            .ok_or_else(|| SpeechError::engine(NAME, "no result in the answer"))?;
        let best = parts.first().and_then(Value::as_str).unwrap_or("");
        Ok(Ok(best.to_owned()))
    }

    /// The JSON body of an HTTP answer; a status other than 2xx with a JSON body is passed on
    /// (the caller reads the service's error from it), without one it is an error.
    fn exchange(
        &self,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, SpeechError> {
        let mut response = sent.map_err(|e| SpeechError::engine(NAME, format!("HTTP: {e}")))?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| SpeechError::engine(NAME, format!("reading the answer: {e}")))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.is_object() => Ok(v),
            _ => {
                let head: String = text.chars().take(120).collect();
                Err(SpeechError::engine(NAME, format!("HTTP {status}: {head}")))
            }
        }
    }
}

impl SpeechToText for Cloud {
    fn name(&self) -> &'static str {
        NAME
    }

    fn transcribe(&mut self, pcm: &[i16]) -> Result<String, SpeechError> {
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let token = self.token()?;
        match self.recognize(&token, &bytes)? {
            Ok(text) => Ok(text),
            Err(_) => {
                // Refused: forget it (unless another worker already replaced it) and retry once.
                {
                    let mut cached = self.token.0.lock().unwrap_or_else(PoisonError::into_inner);
                    if cached.as_ref().is_some_and(|t| t.value == token) {
                        *cached = None;
                    }
                }
                let token = self.token()?;
                self.recognize(&token, &bytes)?.map_err(|code| {
                    SpeechError::engine(NAME, format!("error {code}: a new token was refused"))
                })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A request the fake service received: the request line's target and the body.
    type Seen = Arc<Mutex<Vec<(String, String)>>>;

    /// A fake HTTP service on a port of its own: `answer(target, body, n)` gives the status
    /// and body of the `n`th request (from 0). One request per connection.
    fn fake<F>(answer: F) -> (String, Seen)
    where
        F: Fn(&str, &str, usize) -> (u16, String) + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let log = seen.clone();
        let count = AtomicUsize::new(0);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let target = line.split(' ').nth(1).unwrap_or("").to_owned();
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let body = String::from_utf8(body).unwrap();
                let n = count.fetch_add(1, Ordering::SeqCst);
                let (status, text) = answer(&target, &body, n);
                log.lock().unwrap().push((target, body));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        (base, seen)
    }

    fn engine(base: &str) -> Cloud {
        let config = SpeechConfig {
            cloud_token_url: format!("{base}/oauth/2.0/token"),
            cloud_url: format!("{base}/server_api"),
            cloud_api_key: "KEY".into(),
            cloud_secret_key: "S&CRET".into(),
            cloud_dev_pid: 1537,
            timeout_ms: 5000,
            ..SpeechConfig::default()
        };
        Cloud::new(&config, TokenCache::default())
    }

    fn token(value: &str) -> (u16, String) {
        (
            200,
            format!(r#"{{"access_token":"{value}","expires_in":2592000}}"#),
        )
    }

    #[test]
    fn recognizes_with_a_cached_token() {
        let (base, seen) = fake(|target, _, _| {
            if target.starts_with("/oauth") {
                token("tok1")
            } else {
                (
                    200,
                    r#"{"err_no":0,"err_msg":"success.","result":["你好世界"]}"#.into(),
                )
            }
        });
        let mut e = engine(&base);
        assert_eq!(e.transcribe(&[1, -2, 3]).unwrap(), "你好世界");
        assert_eq!(e.transcribe(&[4]).unwrap(), "你好世界");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "one token, two recognitions: {seen:?}");
        assert_eq!(
            seen[0].0,
            "/oauth/2.0/token?grant_type=client_credentials&client_id=KEY&client_secret=S%26CRET"
        );
        let body: Value = serde_json::from_str(&seen[1].1).unwrap();
        assert_eq!(body["format"], "pcm");
        assert_eq!(body["rate"], 16000);
        assert_eq!(body["channel"], 1);
        assert_eq!(body["cuid"], "feige");
        assert_eq!(body["token"], "tok1");
        assert_eq!(body["len"], 6);
        assert_eq!(body["dev_pid"], 1537);
        let speech = base64::engine::general_purpose::STANDARD
            .decode(body["speech"].as_str().unwrap())
            .unwrap();
        assert_eq!(speech, vec![1, 0, 0xFE, 0xFF, 3, 0]);
    }

    #[test]
    fn a_refused_token_is_replaced_once() {
        let (base, seen) = fake(|target, body, n| {
            if target.starts_with("/oauth") {
                token(if n == 0 { "old" } else { "new" })
            } else if body.contains("\"old\"") {
                (
                    200,
                    r#"{"err_no":3302,"err_msg":"authentication failed"}"#.into(),
                )
            } else {
                (200, r#"{"err_no":0,"result":["ok"]}"#.into())
            }
        });
        assert_eq!(engine(&base).transcribe(&[0; 4]).unwrap(), "ok");
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    #[test]
    fn error_answers_fail_the_transcription() {
        let (base, _) = fake(|target, _, _| {
            if target.starts_with("/oauth") {
                token("t")
            } else {
                (
                    200,
                    r#"{"err_no":3301,"err_msg":"speech quality error."}"#.into(),
                )
            }
        });
        let err = engine(&base).transcribe(&[0; 4]).unwrap_err();
        assert!(
            err.to_string().contains("3301: speech quality error."),
            "{err}"
        );

        let (base, _) = fake(|_, _, _| {
            let refusal = r#"{"error":"invalid_client","error_description":"unknown client id"}"#;
            (401, refusal.into())
        });
        let err = engine(&base).transcribe(&[0; 4]).unwrap_err();
        assert!(err.to_string().contains("unknown client id"), "{err}");

        let (base, _) = fake(|_, _, _| (502, "<html>bad gateway</html>".into()));
        let err = engine(&base).transcribe(&[0; 4]).unwrap_err();
        assert!(err.to_string().contains("HTTP 502"), "{err}");

        // Nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = engine(&format!("http://{port}"))
            .transcribe(&[0; 4])
            .unwrap_err();
        assert!(err.to_string().contains("HTTP:"), "{err}");
    }
}
