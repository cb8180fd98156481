//! Audio in, 16 kHz mono 16-bit PCM out: what every speech engine takes.
//!
//! Input is a WAV file (RIFF; integer PCM of 8, 16, 24 or 32 bits, or 32-bit float; any rate
//! from 8 kHz to 192 kHz; one to eight channels) or raw 16 kHz 16-bit little-endian mono PCM
//! (mime `audio/L16`, or a `.raw` or `.pcm` name). Channels are averaged into one and the rate
//! is converted to 16 kHz (an average over each output sample's span when shrinking, linear
//! interpolation when growing). Input longer than the configured limit is refused from its
//! header, before any sample is converted.

/// The rate every engine takes.
pub const RATE: u32 = 16_000;

/// Why audio cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AudioError {
    /// Neither a WAV file nor raw PCM by its mime or name.
    #[error("not a WAV file, nor raw 16 kHz PCM (audio/L16, .raw, .pcm)")]
    Unsupported,
    /// A WAV file whose structure is broken.
    #[error("malformed WAV file: {0}")]
    Malformed(&'static str),
    /// A WAV file that ends before its header or samples do.
    #[error("truncated audio: {0}")]
    Truncated(&'static str),
    /// A WAV encoding this server does not convert.
    #[error("unsupported WAV encoding: {0}")]
    Encoding(String),
    /// Longer than the configured limit.
    #[error("audio of {seconds} s is longer than the limit of {max_seconds} s")]
    TooLong {
        /// The audio's length, rounded up.
        seconds: u64,
        /// The limit.
        max_seconds: u32,
    },
    /// A file larger than any audio of the allowed length ([`max_file_bytes`]).
    #[error("an audio file of {size} bytes is larger than the limit of {max} bytes")]
    FileTooLarge {
        /// The file's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// No samples at all.
    #[error("the audio holds no samples")]
    Empty,
}

/// How the input's samples are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Unsigned 8-bit.
    U8,
    /// Signed little-endian integers of 2, 3 or 4 bytes.
    Int(usize),
    /// 32-bit IEEE float.
    F32,
}

/// Where the samples are and how to read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    encoding: Encoding,
    channels: usize,
    rate: u32,
}

impl Layout {
    fn bytes_per_frame(&self) -> usize {
        let width = match self.encoding {
            Encoding::U8 => 1,
            Encoding::Int(n) => n,
            Encoding::F32 => 4,
        };
        width * self.channels
    }
}

/// The bytes a file of `max_seconds` may take at most (48 kHz, 8 channels, 32 bits would be
/// more; a limit this generous refuses only what cannot be speech of that length), checked
/// before a file is read.
pub fn max_file_bytes(max_seconds: u32) -> u64 {
    u64::from(max_seconds) * 192_000 * 4 + 64 * 1024
}

/// Whether `mime` or `name` says raw 16 kHz 16-bit little-endian mono PCM.
fn is_raw(mime: &str, name: &str) -> bool {
    let base = mime.split(';').next().unwrap_or("").trim();
    let lower = name.to_ascii_lowercase();
    base.eq_ignore_ascii_case("audio/l16") || lower.ends_with(".raw") || lower.ends_with(".pcm")
}

/// Converts `bytes` (a WAV file, or raw PCM by `mime` or `name`) into 16 kHz mono samples.
///
/// # Errors
/// [`AudioError`]: not audio this server reads, broken or truncated, longer than
/// `max_seconds`, or empty.
pub fn decode(
    bytes: &[u8],
    mime: &str,
    name: &str,
    max_seconds: u32,
) -> Result<Vec<i16>, AudioError> {
    let (layout, data) = if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE"
    {
        parse_wav(bytes)?
    } else if is_raw(mime, name) {
        let layout = Layout {
            encoding: Encoding::Int(2),
            channels: 1,
            rate: RATE,
        };
        (layout, bytes)
    } else {
        return Err(AudioError::Unsupported);
    };
    let frames = data.len() / layout.bytes_per_frame();
    if frames == 0 {
        return Err(AudioError::Empty);
    }
    let rate = u64::from(layout.rate);
    let seconds = (frames as u64).div_ceil(rate);
    if frames as u64 > u64::from(max_seconds) * rate {
        return Err(AudioError::TooLong {
            seconds,
            max_seconds,
        });
    }
    let mono = downmix(data, &layout, frames);
    Ok(resample(&mono, layout.rate))
}

/// Finds the `fmt ` and `data` chunks of a RIFF WAVE file.
fn parse_wav(bytes: &[u8]) -> Result<(Layout, &[u8]), AudioError> {
    let mut at = 12;
    let mut layout = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let size = usize::try_from(size).map_err(|_| AudioError::Malformed("chunk size"))?;
        let body = at + 8;
        if id == b"data" {
            let layout = layout.ok_or(AudioError::Malformed("data before fmt"))?;
            let end = body
                .checked_add(size)
                .filter(|&e| e <= bytes.len())
                .ok_or(AudioError::Truncated("the data chunk is cut short"))?;
            return Ok((layout, &bytes[body..end]));
        }
        let end = body
            .checked_add(size)
            .filter(|&e| e <= bytes.len())
            .ok_or(AudioError::Truncated("a chunk is cut short"))?;
        if id == b"fmt " {
            layout = Some(parse_fmt(&bytes[body..end])?);
        }
        // Chunks are padded to an even length.
        at = end + (size & 1);
    }
    Err(if layout.is_some() {
        AudioError::Truncated("no data chunk")
    } else {
        AudioError::Malformed("no fmt chunk")
    })
}

/// Reads a `fmt ` chunk: PCM (1), IEEE float (3) or WAVE_FORMAT_EXTENSIBLE of either.
fn parse_fmt(fmt: &[u8]) -> Result<Layout, AudioError> {
    if fmt.len() < 16 {
        return Err(AudioError::Malformed("fmt chunk too short"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
    let mut tag = u16_at(0);
    let channels = usize::from(u16_at(2));
    let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    let bits = u16_at(14);
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the format's tag leads the sub-format GUID.
        if fmt.len() < 26 {
            return Err(AudioError::Malformed("extensible fmt chunk too short"));
        }
        tag = u16_at(24);
    }
    if !(1..=8).contains(&channels) {
        return Err(AudioError::Encoding(format!("{channels} channels")));
    }
    if !(8_000..=192_000).contains(&rate) {
        return Err(AudioError::Encoding(format!("a rate of {rate} Hz")));
    }
    let encoding = match (tag, bits) {
        (1, 8) => Encoding::U8,
        (1, 16) => Encoding::Int(2),
        (1, 24) => Encoding::Int(3),
        (1, 32) => Encoding::Int(4),
        (3, 32) => Encoding::F32,
        _ => return Err(AudioError::Encoding(format!("format {tag}, {bits} bits"))),
    };
    Ok(Layout {
        encoding,
        channels,
        rate,
    })
}

/// The average of each frame's channels, as floats in -1..1.
fn downmix(data: &[u8], layout: &Layout, frames: usize) -> Vec<f32> {
    let width = layout.bytes_per_frame() / layout.channels;
    let sample = |b: &[u8]| -> f32 {
        match layout.encoding {
            Encoding::U8 => (f32::from(b[0]) - 128.0) / 128.0,
            Encoding::Int(2) => f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0,
            Encoding::Int(3) => {
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                v as f32 / 8_388_608.0
            }
            Encoding::Int(_) => {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0
            }
            Encoding::F32 => {
                let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if v.is_finite() {
                    v.clamp(-1.0, 1.0)
                } else {
                    0.0
                }
            }
        }
    };
    data.chunks_exact(layout.bytes_per_frame())
        .take(frames)
        .map(|frame| {
            let sum: f32 = frame.chunks_exact(width).map(sample).sum();
            sum / layout.channels as f32
        })
        .collect()
}

/// `mono` at `rate` converted to [`RATE`], as 16-bit samples.
fn resample(mono: &[f32], rate: u32) -> Vec<i16> {
    let to_i16 = |v: f32| (v * 32_767.0).round().clamp(-32_768.0, 32_767.0) as i16;
    if rate == RATE {
        return mono.iter().map(|&v| to_i16(v)).collect();
    }
    let step = f64::from(rate) / f64::from(RATE);
    let out_len = (mono.len() as u64 * u64::from(RATE) / u64::from(rate)).max(1) as usize;
    let last = mono.len() - 1;
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * step;
            let v = if step > 1.0 {
                // Shrinking: the average over the span this output sample stands for, a
                // low-pass that keeps what lies above 8 kHz from folding into speech.
                let start = pos.floor() as usize;
                let end = ((pos + step).ceil() as usize)
                    .min(mono.len())
                    .max(start + 1);
                let span = &mono[start.min(last)..end];
                span.iter().sum::<f32>() / span.len() as f32
            } else {
                let left = (pos.floor() as usize).min(last);
                let right = (left + 1).min(last);
                let frac = (pos - left as f64) as f32;
                mono[left] * (1.0 - frac) + mono[right] * frac
            };
            to_i16(v)
        })
        .collect()
}

/// A WAV file of 16-bit PCM samples (interleaved when `channels` > 1), for tests and for
/// the command engine's input.
pub fn wav_bytes(samples: &[i16], rate: u32, channels: u16) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 64);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    out.extend_from_slice(&(channels * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tone(rate: u32, seconds: f32, hz: f32) -> Vec<i16> {
        let n = (rate as f32 * seconds) as usize;
        (0..n)
            .map(|i| {
                ((i as f32 * hz * std::f32::consts::TAU / rate as f32).sin() * 10_000.0) as i16
            })
            .collect()
    }

    #[test]
    fn sixteen_khz_mono_wav_passes_through() {
        let samples = tone(16_000, 0.5, 440.0);
        let out = decode(&wav_bytes(&samples, 16_000, 1), "", "a.wav", 60).unwrap();
        assert_eq!(out.len(), samples.len());
        assert!(out.iter().zip(&samples).all(|(a, b)| (a - b).abs() <= 1));
    }

    #[test]
    fn stereo_is_averaged_and_48k_shrinks_to_16k() {
        // Left a tone, right silence: the mix is half the tone.
        let left = tone(48_000, 1.0, 300.0);
        let stereo: Vec<i16> = left.iter().flat_map(|&l| [l, 0]).collect();
        let out = decode(&wav_bytes(&stereo, 48_000, 2), "audio/wav", "", 60).unwrap();
        assert_eq!(out.len(), 16_000);
        let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((4_500..=5_100).contains(&peak), "peak {peak}");
    }

    #[test]
    fn eight_khz_grows_to_16k_by_interpolation() {
        let out = decode(&wav_bytes(&[0, 1000, 2000], 8_000, 1), "", "", 60).unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(&out[..4], &[0, 500, 1000, 1500]);
    }

    #[test]
    fn raw_pcm_is_known_by_mime_or_name() {
        let bytes: Vec<u8> = [100i16, -200]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        assert_eq!(
            decode(&bytes, "audio/L16; rate=16000", "", 60).unwrap(),
            vec![100, -200]
        );
        assert_eq!(decode(&bytes, "", "Note.PCM", 60).unwrap(), vec![100, -200]);
        assert_eq!(decode(&bytes, "", "x.raw", 60).unwrap(), vec![100, -200]);
        assert_eq!(
            decode(&bytes, "audio/ogg", "x.ogg", 60),
            Err(AudioError::Unsupported)
        );
    }

    #[test]
    fn eight_bit_and_float_wavs_convert() {
        let mut wav = wav_bytes(&[], 16_000, 1);
        // 8-bit: fmt's bits and block align, then two samples (0x80 is silence).
        wav[32] = 1;
        wav[34] = 8;
        wav.extend_from_slice(&[0x80, 0xC0]);
        let len = 2u32;
        wav[40..44].copy_from_slice(&len.to_le_bytes());
        assert_eq!(decode(&wav, "", "", 60).unwrap(), vec![0, 16_384]);
        let mut wav = wav_bytes(&[], 16_000, 1);
        wav[20] = 3;
        wav[32] = 4;
        wav[34] = 32;
        for v in [0.5f32, f32::NAN] {
            wav.extend_from_slice(&v.to_le_bytes());
        }
        wav[40..44].copy_from_slice(&8u32.to_le_bytes());
        assert_eq!(decode(&wav, "", "", 60).unwrap(), vec![16_384, 0]);
    }

    #[test]
    fn garbage_and_truncation_are_refused() {
        assert_eq!(
            decode(b"hello", "", "a.wav", 60),
            Err(AudioError::Unsupported)
        );
        let wav = wav_bytes(&tone(16_000, 0.1, 440.0), 16_000, 1);
        assert!(matches!(
            decode(&wav[..wav.len() - 10], "", "", 60),
            Err(AudioError::Truncated(_))
        ));
        assert!(matches!(
            decode(&wav[..12], "", "", 60),
            Err(AudioError::Malformed(_))
        ));
        assert!(matches!(
            decode(&wav[..30], "", "", 60),
            Err(AudioError::Truncated(_))
        ));
        assert!(matches!(
            decode(&wav[..36], "", "", 60),
            Err(AudioError::Truncated(_))
        ));
        let mut odd = wav.clone();
        odd[22] = 0; // no channels
        assert!(matches!(
            decode(&odd, "", "", 60),
            Err(AudioError::Encoding(_))
        ));
        let mut compressed = wav.clone();
        compressed[20] = 0x55; // MP3 in a WAV
        assert!(matches!(
            decode(&compressed, "", "", 60),
            Err(AudioError::Encoding(_))
        ));
        assert_eq!(
            decode(&wav_bytes(&[], 16_000, 1), "", "", 60),
            Err(AudioError::Empty)
        );
        assert_eq!(decode(&[], "audio/L16", "", 60), Err(AudioError::Empty));
        // A huge declared chunk size does not overflow.
        let mut huge = wav.clone();
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&huge, "", "", 60),
            Err(AudioError::Truncated(_))
        ));
    }

    #[test]
    fn audio_over_the_limit_is_refused() {
        let wav = wav_bytes(&tone(8_000, 2.5, 440.0), 8_000, 1);
        assert_eq!(
            decode(&wav, "", "", 2),
            Err(AudioError::TooLong {
                seconds: 3,
                max_seconds: 2
            })
        );
        assert!(decode(&wav, "", "", 3).is_ok());
        assert!(max_file_bytes(60) > 60 * 16_000 * 2);
    }
}
