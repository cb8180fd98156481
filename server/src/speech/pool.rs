//! [`Speech`]: the speech worker threads over [`crate::workers::Pool`]. Each thread owns one
//! instance of every engine in use (one PocketSphinx decoder per thread); a job reads the
//! audio file, converts it ([`super::audio`]) and runs the engine of the request's language,
//! all on the worker thread. A full queue is refused at once (`BUSY`).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use super::audio::{self, AudioError};
use super::cloud::{Cloud, TokenCache};
use super::command::CommandEngine;
use super::config::{EngineKind, SpeechConfig};
use super::engine::{SpeechError, SpeechToText, Transcript};
use crate::workers::{Pool, PoolSize};

/// One worker thread's engines, by kind.
struct Engines(Vec<(EngineKind, Box<dyn SpeechToText>)>);

/// An audio file to transcribe: where it is, and what its mime type and name say of it.
#[derive(Debug, Clone)]
pub struct AudioFile {
    /// The file on disk.
    pub path: PathBuf,
    /// Its mime type (`audio/L16` marks raw PCM).
    pub mime: String,
    /// Its name (`.raw` and `.pcm` mark raw PCM).
    pub name: String,
    /// Its size in bytes, counted against the pool's byte bound.
    pub size: u64,
}

/// The speech-to-text service; see the module docs.
pub struct Speech {
    config: SpeechConfig,
    /// None when no language has an engine.
    pool: Option<Pool<Engines>>,
}

impl std::fmt::Debug for Speech {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speech")
            .field("engines", &self.config.engines_used())
            .field("pool", &self.pool)
            .finish()
    }
}

impl Speech {
    /// Starts the worker threads and makes their engines (blocking: loading a model takes a
    /// second or two); no thread when no engine is configured.
    ///
    /// # Errors
    /// [`SpeechError::Start`]: an engine could not be made (a missing model, say).
    pub fn start(config: &SpeechConfig) -> Result<Speech, SpeechError> {
        let kinds = config.engines_used();
        if kinds.is_empty() {
            return Ok(Speech {
                config: config.clone(),
                pool: None,
            });
        }
        let size = PoolSize {
            threads: config.workers,
            queue: config.queue,
            queue_bytes: usize::try_from(audio::max_file_bytes(config.max_audio_s))
                .unwrap_or(usize::MAX)
                .saturating_mul(config.workers + config.queue),
        };
        let settings = config.clone();
        let token = TokenCache::default();
        let pool = Pool::start::<SpeechError, _>("feige-speech", size, move |_| {
            let engines = kinds
                .iter()
                .map(|&kind| Ok((kind, make(kind, &settings, &token)?)))
                .collect::<Result<Vec<_>, SpeechError>>()?;
            Ok(Engines(engines))
        })?;
        Ok(Speech {
            config: config.clone(),
            pool: Some(pool),
        })
    }

    /// Transcriptions queued and running.
    pub fn jobs(&self) -> usize {
        self.pool.as_ref().map_or(0, Pool::jobs)
    }

    /// The engine that serves `language` ("" = the default), if any.
    pub fn engine_for(&self, language: &str) -> Option<EngineKind> {
        self.config.engine_for(language)
    }

    /// Transcribes `file` with the engine of `language`, on a worker thread.
    ///
    /// # Errors
    /// [`SpeechError::Unavailable`] (no engine for the language), [`SpeechError::Pool`]
    /// (busy), [`SpeechError::Audio`] and [`SpeechError::Read`] (the file),
    /// [`SpeechError::Engine`].
    pub async fn transcribe(
        &self,
        language: &str,
        file: AudioFile,
    ) -> Result<Transcript, SpeechError> {
        let kind = self.engine_for(language);
        let (Some(kind), Some(pool)) = (kind, self.pool.as_ref()) else {
            return Err(SpeechError::Unavailable(language.to_owned()));
        };
        let max_s = self.config.max_audio_s;
        let held = usize::try_from(file.size).unwrap_or(usize::MAX);
        pool.run(held, move |engines: &mut Engines| {
            let bytes = read_bounded(&file.path, audio::max_file_bytes(max_s))?;
            let pcm = audio::decode(&bytes, &file.mime, &file.name, max_s)?;
            drop(bytes);
            let engine = engines
                .0
                .iter_mut()
                .find(|(k, _)| *k == kind)
                .map(|(_, e)| e)
                .ok_or_else(|| SpeechError::Unavailable(kind.name().to_owned()))?;
            let text = engine.transcribe(&pcm)?;
            Ok(Transcript {
                text: text.trim().to_owned(),
                engine: engine.name(),
            })
        })
        .await?
    }
}

/// One engine of `kind` for one worker thread.
fn make(
    kind: EngineKind,
    c: &SpeechConfig,
    token: &TokenCache,
) -> Result<Box<dyn SpeechToText>, SpeechError> {
    let timeout = Duration::from_millis(c.timeout_ms);
    match kind {
        EngineKind::Cloud => Ok(Box::new(Cloud::new(c, token.clone()))),
        EngineKind::Command => Ok(Box::new(CommandEngine::new(
            c.command.clone(),
            c.command_args.clone(),
            timeout,
            c.command_max_output,
        ))),
        #[cfg(feature = "pocketsphinx")]
        EngineKind::Pocketsphinx => Ok(Box::new(super::pocketsphinx::Decoder::new(
            &c.pocketsphinx_hmm,
            &c.pocketsphinx_lm,
            &c.pocketsphinx_dict,
        )?)),
        #[cfg(not(feature = "pocketsphinx"))]
        EngineKind::Pocketsphinx => Err(SpeechError::Start {
            engine: kind.name(),
            message: "this server was built without the pocketsphinx feature".into(),
        }),
        EngineKind::None => Err(SpeechError::Unavailable(String::new())),
    }
}

/// The file at `path`, refused when larger than `max` bytes.
fn read_bounded(path: &std::path::Path, max: u64) -> Result<Vec<u8>, SpeechError> {
    let file = std::fs::File::open(path).map_err(SpeechError::Read)?;
    let size = file.metadata().map_err(SpeechError::Read)?.len();
    if size > max {
        return Err(AudioError::FileTooLarge { size, max }.into());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(SpeechError::Read)?;
    if bytes.len() as u64 > max {
        return Err(AudioError::FileTooLarge {
            size: bytes.len() as u64,
            max,
        }
        .into());
    }
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::workers::PoolError;

    fn command_config(dir: &tempfile::TempDir, body: &str, queue: usize) -> SpeechConfig {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.path().join("stt.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        SpeechConfig {
            engine: EngineKind::Command,
            command: path,
            workers: 1,
            queue,
            ..SpeechConfig::default()
        }
    }

    fn wav_file(dir: &tempfile::TempDir, samples: usize) -> AudioFile {
        let path = dir.path().join("note.wav");
        let bytes = audio::wav_bytes(&vec![0; samples], 8_000, 1);
        std::fs::write(&path, &bytes).unwrap();
        AudioFile {
            path,
            mime: "audio/wav".into(),
            name: "note.wav".into(),
            size: bytes.len() as u64,
        }
    }

    #[tokio::test]
    async fn a_job_converts_the_audio_and_runs_the_languages_engine() {
        let dir = tempfile::tempdir().unwrap();
        // The engine sees 16 kHz: 8,000 samples at 8 kHz become 32,000 bytes.
        let mut c = command_config(&dir, "echo \"  heard $(wc -c < \"$1\")  \"", 4);
        c.languages.insert("zh".into(), EngineKind::None);
        let speech = Speech::start(&c).unwrap();
        let got = speech
            .transcribe("en", wav_file(&dir, 8_000))
            .await
            .unwrap();
        assert_eq!(got.text, "heard 32044");
        assert_eq!(got.engine, "command");
        let err = speech
            .transcribe("zh", wav_file(&dir, 10))
            .await
            .unwrap_err();
        assert!(matches!(err, SpeechError::Unavailable(_)), "{err}");
        let mut missing = wav_file(&dir, 10);
        missing.path = dir.path().join("gone.wav");
        let err = speech.transcribe("", missing).await.unwrap_err();
        assert!(matches!(err, SpeechError::Read(_)), "{err}");
        let none = Speech::start(&SpeechConfig::default()).unwrap();
        let err = none.transcribe("", wav_file(&dir, 10)).await.unwrap_err();
        assert!(matches!(err, SpeechError::Unavailable(_)), "{err}");
    }

    #[tokio::test]
    async fn a_full_queue_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let gate = dir.path().join("gate");
        let c = command_config(
            &dir,
            &format!(
                "while [ ! -e {} ]; do sleep 0.02; done; echo done",
                gate.display()
            ),
            1,
        );
        let speech = Arc::new(Speech::start(&c).unwrap());
        let file = wav_file(&dir, 100);
        // One runs, one waits in the queue of 1; the third is refused.
        let first = tokio::spawn({
            let (s, f) = (speech.clone(), file.clone());
            async move { s.transcribe("", f).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = tokio::spawn({
            let (s, f) = (speech.clone(), file.clone());
            async move { s.transcribe("", f).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let third = speech.transcribe("", file).await.unwrap_err();
        assert!(
            matches!(third, SpeechError::Pool(PoolError::Busy(_))),
            "{third}"
        );
        std::fs::write(&gate, b"").unwrap();
        assert_eq!(first.await.unwrap().unwrap().text, "done");
        assert_eq!(second.await.unwrap().unwrap().text, "done");
    }
}
