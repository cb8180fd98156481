//! Speech-to-text: the [`SpeechToText`] trait, its engines, and the pool of worker threads
//! they run on ([`Speech`]). Audio is converted to 16 kHz mono 16-bit PCM first
//! ([`audio`]). See ARCHITECTURE.md, "Speech-to-text".

pub mod audio;
mod cloud;
mod command;
pub mod config;
mod engine;
#[cfg(feature = "pocketsphinx")]
pub mod pocketsphinx;
mod pool;

pub use audio::AudioError;
pub use cloud::Cloud;
pub use command::CommandEngine;
pub use config::{EngineKind, SpeechConfig};
pub use engine::{SpeechError, SpeechToText, Transcript};
pub use pool::{AudioFile, Speech};
