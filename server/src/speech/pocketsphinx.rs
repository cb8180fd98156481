//! The offline engine: CMU PocketSphinx 0.8+5prealpha (Debian's `libpocketsphinx3` and
//! `libsphinxbase3`, the model from `pocketsphinx-en-us`) through the ten C functions it
//! needs, declared here by hand. One [`Decoder`] per worker thread: a decoder is not shared
//! between threads (it is neither `Send` nor `Sync`), and separate decoders are independent.
//!
//! The libraries are linked by their runtime names (`libpocketsphinx.so.3`,
//! `libsphinxbase.so.3`, the `+verbatim` link modifier), so the runtime packages suffice:
//! the unversioned `.so` symlinks come only with the `-dev` packages.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::sync::Once;

use super::engine::{SpeechError, SpeechToText};

const NAME: &str = "pocketsphinx";

/// `ps_decoder_t`, opaque.
#[repr(C)]
struct PsDecoder {
    _private: [u8; 0],
}

/// `cmd_ln_t`, opaque.
#[repr(C)]
struct CmdLn {
    _private: [u8; 0],
}

/// `arg_t`, opaque (only passed back to `cmd_ln_init`).
#[repr(C)]
struct ArgDef {
    _private: [u8; 0],
}

#[link(name = "libpocketsphinx.so.3", kind = "dylib", modifiers = "+verbatim")]
extern "C" {
    fn ps_args() -> *const ArgDef;
    fn ps_init(config: *mut CmdLn) -> *mut PsDecoder;
    fn ps_free(ps: *mut PsDecoder) -> c_int;
    fn ps_start_utt(ps: *mut PsDecoder) -> c_int;
    fn ps_process_raw(
        ps: *mut PsDecoder,
        data: *const i16,
        n_samples: usize,
        no_search: c_int,
        full_utt: c_int,
    ) -> c_int;
    fn ps_end_utt(ps: *mut PsDecoder) -> c_int;
    fn ps_get_hyp(ps: *mut PsDecoder, out_best_score: *mut i32) -> *const c_char;
}

#[link(name = "libsphinxbase.so.3", kind = "dylib", modifiers = "+verbatim")]
extern "C" {
    fn cmd_ln_init(inout: *mut CmdLn, defn: *const ArgDef, strict: c_int, ...) -> *mut CmdLn;
    fn cmd_ln_free_r(cmdln: *mut CmdLn) -> c_int;
    fn err_set_logfp(stream: *mut c_void);
}

/// Silences the library's log (it writes to stderr by default), once per process.
fn quiet() {
    static QUIET: Once = Once::new();
    // SAFETY: err_set_logfp(NULL) only sets a global flag; Once keeps it from racing.
    QUIET.call_once(|| unsafe { err_set_logfp(std::ptr::null_mut()) });
}

/// One PocketSphinx decoder with its configuration; see the module docs.
#[derive(Debug)]
pub struct Decoder {
    ps: *mut PsDecoder,
    config: *mut CmdLn,
}

fn c_path(what: &str, p: &Path) -> Result<CString, SpeechError> {
    if !p.exists() {
        return Err(SpeechError::Start {
            engine: NAME,
            message: format!("the {what} {} does not exist", p.display()),
        });
    }
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| SpeechError::Start {
        engine: NAME,
        message: format!("the {what} path holds a NUL byte"),
    })
}

impl Decoder {
    /// Loads the acoustic model `hmm`, the language model `lm` and the dictionary `dict`
    /// (about 100 MB, a second or two).
    ///
    /// # Errors
    /// [`SpeechError::Start`] when a file is missing or the library refuses the model.
    pub fn new(hmm: &Path, lm: &Path, dict: &Path) -> Result<Decoder, SpeechError> {
        quiet();
        let hmm = c_path("acoustic model (speech.pocketsphinx_hmm)", hmm)?;
        let lm = c_path("language model (speech.pocketsphinx_lm)", lm)?;
        let dict = c_path("dictionary (speech.pocketsphinx_dict)", dict)?;
        let fail = |message: &str| SpeechError::Start {
            engine: NAME,
            message: message.to_owned(),
        };
        // SAFETY: every string is a NUL-terminated CString alive for the call; the argument
        // list is NULL-terminated as cmd_ln_init requires; ps_args returns a static table.
        let config = unsafe {
            cmd_ln_init(
                std::ptr::null_mut(),
                ps_args(),
                1,
                c"-hmm".as_ptr(),
                hmm.as_ptr(),
                c"-lm".as_ptr(),
                lm.as_ptr(),
                c"-dict".as_ptr(),
                dict.as_ptr(),
                std::ptr::null::<c_char>(),
            )
        };
        if config.is_null() {
            return Err(fail("the configuration was refused"));
        }
        // SAFETY: config is a live cmd_ln_t; ps_init takes its own reference to it.
        let ps = unsafe { ps_init(config) };
        if ps.is_null() {
            // SAFETY: config is live and ours; this releases our reference.
            unsafe { cmd_ln_free_r(config) };
            return Err(fail("the model could not be loaded"));
        }
        Ok(Decoder { ps, config })
    }
}

impl SpeechToText for Decoder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn transcribe(&mut self, pcm: &[i16]) -> Result<String, SpeechError> {
        let failed = |step: &str| SpeechError::engine(NAME, format!("{step} failed"));
        // SAFETY: self.ps is a live decoder used by this thread only (&mut self).
        if unsafe { ps_start_utt(self.ps) } < 0 {
            return Err(failed("ps_start_utt"));
        }
        // SAFETY: pcm points at pcm.len() initialized samples for the duration of the call.
        let processed = unsafe { ps_process_raw(self.ps, pcm.as_ptr(), pcm.len(), 0, 1) };
        // SAFETY: as above; an utterance was started and must be ended either way.
        let ended = unsafe { ps_end_utt(self.ps) };
        if processed < 0 || ended < 0 {
            return Err(failed("ps_process_raw"));
        }
        let mut score = 0i32;
        // SAFETY: live decoder; score is a valid out-parameter. The hypothesis is owned by
        // the decoder and valid until its next call, so it is copied at once.
        let hyp = unsafe { ps_get_hyp(self.ps, &mut score) };
        if hyp.is_null() {
            return Ok(String::new());
        }
        // SAFETY: a non-NULL hypothesis is a NUL-terminated string owned by the decoder.
        let text = unsafe { CStr::from_ptr(hyp) };
        Ok(text.to_string_lossy().trim().to_owned())
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: both were made in Decoder::new and are freed once, here; ps_free drops
        // the decoder's reference to the configuration, cmd_ln_free_r ours.
        unsafe {
            ps_free(self.ps);
            cmd_ln_free_r(self.config);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::speech::audio;
    use crate::speech::config::SpeechConfig;

    /// Debian's `pocketsphinx-testdata`: "go forward ten meters", raw 16 kHz mono.
    const GOFORWARD: &str = "/usr/share/pocketsphinx/test/data/goforward.raw";

    fn decoder() -> Decoder {
        let c = SpeechConfig::default();
        Decoder::new(
            &c.pocketsphinx_hmm,
            &c.pocketsphinx_lm,
            &c.pocketsphinx_dict,
        )
        .expect("the model of pocketsphinx-en-us must be installed with this feature on")
    }

    #[test]
    fn a_missing_model_fails_to_start() {
        let c = SpeechConfig::default();
        let err = Decoder::new(
            Path::new("/nonexistent/hmm"),
            &c.pocketsphinx_lm,
            &c.pocketsphinx_dict,
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/hmm"), "{err}");
    }

    #[test]
    fn the_goforward_recording_is_recognized() {
        let bytes = std::fs::read(GOFORWARD).expect("pocketsphinx-testdata must be installed");
        let pcm = audio::decode(&bytes, "", "goforward.raw", 60).unwrap();
        assert_eq!(decoder().transcribe(&pcm).unwrap(), "go forward ten meters");
    }

    #[test]
    fn flite_saying_hello_world_is_recognized() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("hello.wav");
        let status = std::process::Command::new("flite")
            .args(["-voice", "kal16", "-t", "hello world", "-o"])
            .arg(&wav)
            .status()
            .expect("flite must be installed");
        assert!(status.success());
        let bytes = std::fs::read(&wav).unwrap();
        let pcm = audio::decode(&bytes, "audio/wav", "hello.wav", 60).unwrap();
        let mut d = decoder();
        assert_eq!(d.transcribe(&pcm).unwrap(), "hello world");
        // The same decoder again: utterances are independent.
        assert_eq!(d.transcribe(&pcm).unwrap(), "hello world");
    }

    #[test]
    fn silence_is_no_text_and_a_decoder_serves_many_utterances() {
        let mut d = decoder();
        assert_eq!(d.transcribe(&[0; 16_000]).unwrap(), "");
        assert_eq!(d.transcribe(&[]).unwrap(), "");
    }
}
