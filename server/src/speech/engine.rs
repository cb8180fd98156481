//! The vocabulary the engines and the pool share: the [`SpeechToText`] trait, a
//! [`Transcript`], and [`SpeechError`].

use super::audio::AudioError;

/// An engine that turns speech into text. Each worker thread owns its engines, so an engine
/// needs neither `Send` nor `Sync`, and may keep a decoder between calls.
pub trait SpeechToText {
    /// The engine's name, as `Transcript.engine` reports it.
    fn name(&self) -> &'static str;

    /// The text spoken in `pcm` (16 kHz, mono, 16-bit); empty when nothing was recognized.
    ///
    /// # Errors
    /// [`SpeechError::Engine`] when the engine fails.
    fn transcribe(&mut self, pcm: &[i16]) -> Result<String, SpeechError>;
}

/// A transcription's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// The text (trimmed).
    pub text: String,
    /// The engine that made it.
    pub engine: &'static str,
}

/// Why a transcription failed.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// No engine serves the request's language.
    #[error("no speech-to-text engine for language {0:?}")]
    Unavailable(String),
    /// The audio cannot be used.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The audio file could not be read.
    #[error("cannot read the audio: {0}")]
    Read(std::io::Error),
    /// The engine failed (its own words).
    #[error("{engine}: {message}")]
    Engine {
        /// The engine's name.
        engine: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The pool refused the job (busy) or is gone.
    #[error(transparent)]
    Pool(#[from] crate::workers::PoolError),
    /// An engine could not be made when the server started.
    #[error("cannot start the {engine} speech engine: {message}")]
    Start {
        /// The engine's name.
        engine: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl From<std::io::Error> for SpeechError {
    fn from(e: std::io::Error) -> Self {
        SpeechError::Start {
            engine: "speech",
            message: e.to_string(),
        }
    }
}

impl SpeechError {
    /// An engine's failure.
    pub(crate) fn engine(engine: &'static str, message: impl Into<String>) -> Self {
        SpeechError::Engine {
            engine,
            message: message.into(),
        }
    }
}
