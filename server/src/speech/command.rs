//! The command engine: runs a configured program on the audio, written to a temporary 16 kHz
//! mono WAV file whose path is an argument; the program's standard output is the text.
//! The program runs in a process group of its own, killed as a whole when the run ends or
//! times out, so a child it started cannot keep the run open.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::audio::{wav_bytes, RATE};
use super::engine::{SpeechError, SpeechToText};

const NAME: &str = "command";
/// Most bytes of standard error kept for the failure's message.
const STDERR_BYTES: u64 = 512;

/// Runs `program args…` on a WAV file; see the module docs.
#[derive(Debug, Clone)]
pub struct CommandEngine {
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
    max_output: usize,
}

impl CommandEngine {
    /// An engine running `program` with `args` (`{wav}` replaced by the file's path, or the
    /// path appended), for at most `timeout`, reading at most `max_output` bytes of text.
    pub fn new(program: PathBuf, args: Vec<String>, timeout: Duration, max_output: usize) -> Self {
        CommandEngine {
            program,
            args,
            timeout,
            max_output,
        }
    }

    fn run(&self, wav: &std::path::Path) -> Result<String, SpeechError> {
        use std::os::unix::process::CommandExt;
        let path = wav.to_string_lossy();
        let mut cmd = Command::new(&self.program);
        let mut placed = false;
        for arg in &self.args {
            placed |= arg.contains("{wav}");
            cmd.arg(arg.replace("{wav}", &path));
        }
        if !placed {
            cmd.arg(wav);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            SpeechError::engine(NAME, format!("cannot run {}: {e}", self.program.display()))
        })?;
        let group = rustix::process::Pid::from_child(&child);
        let limit = u64::try_from(self.max_output).unwrap_or(u64::MAX);
        let stdout = child.stdout.take().map(|out| read_up_to(out, limit + 1));
        let stderr = child.stderr.take().map(|err| read_up_to(err, STDERR_BYTES));
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    let _ =
                        rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                    let _ = child.wait();
                    return Err(SpeechError::engine(NAME, format!("waiting for it: {e}")));
                }
            }
        };
        // Whatever the program left running would hold its output open.
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = child.wait();
        let out = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
        let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
        let Some(status) = status else {
            return Err(SpeechError::engine(
                NAME,
                format!("no answer within {} ms", self.timeout.as_millis()),
            ));
        };
        // Before the status: a program writing on is ended by the closed pipe.
        if out.len() > self.max_output {
            return Err(SpeechError::engine(
                NAME,
                format!("more than {} bytes of output", self.max_output),
            ));
        }
        if !status.success() {
            let err = String::from_utf8_lossy(&err);
            return Err(SpeechError::engine(
                NAME,
                format!("{status}: {}", err.trim()),
            ));
        }
        String::from_utf8(out).map_err(|_| SpeechError::engine(NAME, "the output is not UTF-8"))
    }
}

/// Reads at most `limit` bytes of `from` on a thread of its own (so neither pipe can fill and
/// stall the program while the other is read), then drops it.
fn read_up_to<R: Read + Send + 'static>(from: R, limit: u64) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = from.take(limit).read_to_end(&mut buf);
        buf
    })
}

impl SpeechToText for CommandEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn transcribe(&mut self, pcm: &[i16]) -> Result<String, SpeechError> {
        let mut file = tempfile::Builder::new()
            .prefix("feige-speech-")
            .suffix(".wav")
            .tempfile()
            .map_err(|e| SpeechError::engine(NAME, format!("cannot make a temporary file: {e}")))?;
        std::io::Write::write_all(&mut file, &wav_bytes(pcm, RATE, 1))
            .map_err(|e| SpeechError::engine(NAME, format!("cannot write the audio: {e}")))?;
        let text = self.run(file.path())?;
        Ok(text.trim().to_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn script(dir: &tempfile::TempDir, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.path().join("stt.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn engine(program: PathBuf, args: &[&str], timeout_ms: u64) -> CommandEngine {
        let args = args.iter().map(|s| (*s).to_owned()).collect();
        CommandEngine::new(program, args, Duration::from_millis(timeout_ms), 64)
    }

    #[test]
    fn the_program_reads_the_wav_and_prints_the_text() {
        let dir = tempfile::tempdir().unwrap();
        // Prints its first argument, then the WAV's size and rate as the text.
        let p = script(
            &dir,
            "echo \"$1 $(wc -c < \"$2\") $(od -An -tu4 -j24 -N4 \"$2\" | tr -d ' ')\"",
        );
        let mut e = engine(p, &["--lang=en", "{wav}"], 5000);
        assert_eq!(e.transcribe(&[0; 100]).unwrap(), "--lang=en 244 16000");
    }

    #[test]
    fn failures_time_outs_and_floods_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let fail = script(&dir, "echo 'no model' >&2; exit 3");
        let err = engine(fail, &[], 5000).transcribe(&[0; 10]).unwrap_err();
        assert!(err.to_string().contains("no model"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        // A child that outlives the script holds stdout: the group is killed anyway.
        let slow = script(&dir, "sleep 30 & sleep 30");
        let started = Instant::now();
        let err = engine(slow, &[], 200).transcribe(&[0; 10]).unwrap_err();
        assert!(err.to_string().contains("no answer"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));

        let dir = tempfile::tempdir().unwrap();
        let flood = script(&dir, "yes hello");
        let err = engine(flood, &[], 5000).transcribe(&[0; 10]).unwrap_err();
        assert!(err.to_string().contains("more than 64 bytes"), "{err}");

        let missing = engine(PathBuf::from("/nonexistent/stt"), &[], 1000).transcribe(&[0; 10]);
        assert!(missing.unwrap_err().to_string().contains("cannot run"));
    }
}
