//! The `[speech]` table of the server's TOML file: which engine serves which language, the
//! pool's size, the audio limit, and each engine's settings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// A speech-to-text engine, as the settings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// No engine: Transcribe answers `SPEECH_UNAVAILABLE`.
    None,
    /// CMU PocketSphinx, offline (needs the `pocketsphinx` cargo feature).
    Pocketsphinx,
    /// A Baidu-style HTTP API (token endpoint + recognition endpoint).
    Cloud,
    /// A program run on a WAV file; its standard output is the text.
    Command,
}

impl EngineKind {
    /// The name `Transcript.engine` reports.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::None => "none",
            EngineKind::Pocketsphinx => "pocketsphinx",
            EngineKind::Cloud => "cloud",
            EngineKind::Command => "command",
        }
    }
}

/// Speech-to-text settings (`[speech]` in the TOML file). Unknown keys are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpeechConfig {
    /// The engine for requests without a language, or with one `languages` does not name.
    pub engine: EngineKind,
    /// Engines by language ("en", "zh"; a request's "en-US" looks up "en-us", then "en").
    pub languages: BTreeMap<String, EngineKind>,
    /// Worker threads, each with its own engines (a PocketSphinx decoder takes ~100 MB).
    pub workers: usize,
    /// Transcriptions waiting at most; one more is refused with `BUSY`.
    pub queue: usize,
    /// Longest audio accepted, in seconds.
    pub max_audio_s: u32,
    /// Bound on one cloud HTTP exchange and on one run of the command, in milliseconds.
    pub timeout_ms: u64,
    /// PocketSphinx: the acoustic model directory (`-hmm`).
    pub pocketsphinx_hmm: PathBuf,
    /// PocketSphinx: the language model (`-lm`).
    pub pocketsphinx_lm: PathBuf,
    /// PocketSphinx: the pronunciation dictionary (`-dict`).
    pub pocketsphinx_dict: PathBuf,
    /// Cloud: the token endpoint (OAuth client credentials).
    pub cloud_token_url: String,
    /// Cloud: the recognition endpoint.
    pub cloud_url: String,
    /// Cloud: the API key (`client_id`).
    pub cloud_api_key: String,
    /// Cloud: the secret key (`client_secret`).
    pub cloud_secret_key: String,
    /// Cloud: the device id sent with each request (`cuid`).
    pub cloud_cuid: String,
    /// Cloud: the model id (`dev_pid`, 1537 is Mandarin); 0: the service's default.
    pub cloud_dev_pid: u32,
    /// Command: the program to run.
    pub command: PathBuf,
    /// Command: its arguments; `{wav}` is replaced by the WAV file's path, which is appended
    /// when no argument holds `{wav}`.
    pub command_args: Vec<String>,
    /// Command: most bytes of standard output read; more fails the transcription.
    pub command_max_output: usize,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        let model = PathBuf::from("/usr/share/pocketsphinx/model/en-us");
        SpeechConfig {
            engine: EngineKind::None,
            languages: BTreeMap::new(),
            workers: 1,
            queue: 8,
            max_audio_s: 60,
            timeout_ms: 30_000,
            pocketsphinx_hmm: model.join("en-us"),
            pocketsphinx_lm: model.join("en-us.lm.bin"),
            pocketsphinx_dict: model.join("cmudict-en-us.dict"),
            cloud_token_url: "https://aip.baidubce.com/oauth/2.0/token".into(),
            cloud_url: "https://vop.baidu.com/server_api".into(),
            cloud_api_key: String::new(),
            cloud_secret_key: String::new(),
            cloud_cuid: "feige".into(),
            cloud_dev_pid: 0,
            command: PathBuf::new(),
            command_args: Vec::new(),
            command_max_output: 64 * 1024,
        }
    }
}

impl SpeechConfig {
    /// The engine for a request's `language` ("" = the default), `None` when there is none.
    pub fn engine_for(&self, language: &str) -> Option<EngineKind> {
        let lang = language.trim().to_ascii_lowercase();
        let primary = lang.split(['-', '_']).next().unwrap_or("");
        let kind = self
            .languages
            .get(&lang)
            .or_else(|| self.languages.get(primary))
            .copied()
            .unwrap_or(self.engine);
        (kind != EngineKind::None).then_some(kind)
    }

    /// Every engine some language uses, each once, in a fixed order.
    pub fn engines_used(&self) -> Vec<EngineKind> {
        let mut kinds: Vec<EngineKind> = std::iter::once(self.engine)
            .chain(self.languages.values().copied())
            .filter(|k| *k != EngineKind::None)
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// Checks the settings of the engines in use.
    ///
    /// # Errors
    /// The first problem, as text naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.workers == 0 || self.workers > 64 || self.queue == 0 {
            return Err("speech.workers: 1..=64, speech.queue: at least 1".into());
        }
        if self.max_audio_s == 0 || self.max_audio_s > 3600 {
            return Err("speech.max_audio_s: 1..=3600".into());
        }
        if self.timeout_ms < 100 {
            return Err("speech.timeout_ms: at least 100".into());
        }
        for kind in self.engines_used() {
            match kind {
                EngineKind::Pocketsphinx if !cfg!(feature = "pocketsphinx") => {
                    return Err("speech: pocketsphinx needs a server built with \
                                `--features pocketsphinx`"
                        .into())
                }
                EngineKind::Cloud
                    if self.cloud_api_key.is_empty()
                        || self.cloud_secret_key.is_empty()
                        || self.cloud_url.is_empty()
                        || self.cloud_token_url.is_empty() =>
                {
                    return Err("speech.cloud_*: the cloud engine needs cloud_url, \
                                cloud_token_url, cloud_api_key and cloud_secret_key"
                        .into())
                }
                EngineKind::Command if self.command.as_os_str().is_empty() => {
                    return Err("speech.command: the command engine needs a program".into())
                }
                EngineKind::Command if self.command_max_output == 0 => {
                    return Err("speech.command_max_output: at least 1".into())
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn languages_pick_engines_and_fall_back_to_the_default() {
        let c: SpeechConfig = toml::from_str(
            "engine = \"command\"\ncommand = \"/bin/true\"\n\
             [languages]\nzh = \"cloud\"\nen-gb = \"none\"",
        )
        .unwrap();
        assert_eq!(c.engine_for(""), Some(EngineKind::Command));
        assert_eq!(c.engine_for("fr"), Some(EngineKind::Command));
        assert_eq!(c.engine_for("ZH"), Some(EngineKind::Cloud));
        assert_eq!(c.engine_for("zh-CN"), Some(EngineKind::Cloud));
        assert_eq!(c.engine_for("en-GB"), None);
        assert_eq!(
            c.engines_used(),
            vec![EngineKind::Cloud, EngineKind::Command]
        );
        assert!(c.validate().is_err(), "cloud without keys");
        assert_eq!(SpeechConfig::default().engine_for("en"), None);
        assert!(SpeechConfig::default().validate().is_ok());
        assert!(toml::from_str::<SpeechConfig>("engine = \"whisper\"").is_err());
        assert!(toml::from_str::<SpeechConfig>("enigne = \"none\"").is_err());
    }

    #[test]
    fn pocketsphinx_needs_the_feature() {
        let c = SpeechConfig {
            engine: EngineKind::Pocketsphinx,
            ..SpeechConfig::default()
        };
        assert_eq!(c.validate().is_ok(), cfg!(feature = "pocketsphinx"));
    }
}
