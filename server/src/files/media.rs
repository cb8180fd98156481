//! What the server learns from a file's bytes (on the file pool): whether it is an image
//! (sniffed from its content, never from its name or claimed type), its dimensions and a
//! thumbnail, and a WAV file's duration.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use image::{ImageFormat, ImageReader, Limits};

/// The longest side of a thumbnail, in pixels.
pub(crate) const THUMBNAIL_SIDE: u32 = 256;
/// Images larger than this on either side are not decoded for a thumbnail.
const MAX_SIDE: u32 = 16_384;
/// Most memory one image decode may take.
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// What [`examine`] found.
#[derive(Debug, Default)]
pub(crate) struct Media {
    /// The sniffed MIME type of an image ("" when the bytes are not one).
    pub image_mime: &'static str,
    /// Images: pixels.
    pub width: u32,
    /// Images: pixels.
    pub height: u32,
    /// Images: a PNG at most [`THUMBNAIL_SIDE`] on its longer side, with its width and
    /// height.
    pub thumbnail: Option<(Vec<u8>, u32, u32)>,
    /// WAV: the sound's length.
    pub duration_ms: Option<u32>,
}

/// Looks at the file at `path` (blocking: call it on the file pool).
pub(crate) fn examine(path: &Path) -> Media {
    let mut media = Media::default();
    let Ok(mut f) = std::fs::File::open(path) else {
        return media;
    };
    let mut head = [0u8; 64];
    let n = read_up_to(&mut f, &mut head);
    let head = head.get(..n).unwrap_or_default();
    if let Ok(format) = image::guess_format(head) {
        if matches!(
            format,
            ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
        ) {
            image(path, format, &mut media);
        }
    } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WAVE") {
        media.duration_ms = wav_duration(&mut f);
    }
    media
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

fn image(path: &Path, format: ImageFormat, media: &mut Media) {
    let reader = |limits: Limits| {
        let mut r = ImageReader::open(path).ok()?;
        r.set_format(format);
        r.limits(limits);
        Some(r)
    };
    let Some(dims) = reader(Limits::default()).and_then(|r| r.into_dimensions().ok()) else {
        return;
    };
    media.image_mime = format.to_mime_type();
    (media.width, media.height) = dims;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let Some(img) = reader(limits).and_then(|r| r.decode().ok()) else {
        return;
    };
    let thumb = img.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    let mut png = std::io::Cursor::new(Vec::new());
    if thumb.write_to(&mut png, ImageFormat::Png).is_ok() {
        media.thumbnail = Some((png.into_inner(), thumb.width(), thumb.height()));
    }
}

/// The length of a RIFF/WAVE file's `data` chunk at its `fmt ` chunk's byte rate.
fn wav_duration(f: &mut std::fs::File) -> Option<u32> {
    f.seek(SeekFrom::Start(12)).ok()?;
    let mut byte_rate = None;
    // A WAV file has a handful of chunks; a bound keeps a hostile one from looping long.
    for _ in 0..64 {
        let mut header = [0u8; 8];
        f.read_exact(&mut header).ok()?;
        let (id, len) = header.split_at(4);
        let len = u32::from_le_bytes(len.try_into().ok()?);
        match id {
            b"fmt " => {
                let mut fmt = [0u8; 16];
                f.read_exact(&mut fmt).ok()?;
                let rate = u32::from_le_bytes(fmt.get(8..12)?.try_into().ok()?);
                byte_rate = Some(rate).filter(|&r| r > 0);
                f.seek(SeekFrom::Current(i64::from(len) - 16 + i64::from(len % 2)))
                    .ok()?;
            }
            b"data" => {
                let ms = u64::from(len) * 1000 / u64::from(byte_rate?);
                return u32::try_from(ms).ok();
            }
            _ => {
                f.seek(SeekFrom::Current(i64::from(len) + i64::from(len % 2)))
                    .ok()?;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::examine;

    #[test]
    fn a_png_is_sniffed_measured_and_thumbnailed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-named-png.bin");
        let img = image::RgbImage::from_pixel(600, 300, image::Rgb([200, 10, 10]));
        img.save_with_format(&path, image::ImageFormat::Png)
            .unwrap();
        let m = examine(&path);
        assert_eq!((m.image_mime, m.width, m.height), ("image/png", 600, 300));
        let (png, w, h) = m.thumbnail.unwrap();
        let thumb = image::load_from_memory(&png).unwrap();
        assert_eq!((thumb.width(), thumb.height(), w, h), (256, 128, 256, 128));
    }

    #[test]
    fn a_wav_is_measured_and_other_bytes_are_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        // 16 kHz mono 16-bit: 32,000 bytes a second; 1.5 s of silence.
        let data = vec![0u8; 48_000];
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&16_000u32.to_le_bytes());
        wav.extend_from_slice(&32_000u32.to_le_bytes());
        wav.extend_from_slice(&2u16.to_le_bytes());
        wav.extend_from_slice(&16u16.to_le_bytes());
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
        wav.extend_from_slice(&data);
        std::fs::write(&path, &wav).unwrap();
        let m = examine(&path);
        assert_eq!((m.duration_ms, m.image_mime), (Some(1500), ""));
        let other = dir.path().join("x.png");
        std::fs::write(&other, b"\x89PNG but not really").unwrap();
        let m = examine(&other);
        assert_eq!((m.width, m.image_mime, m.duration_ms), (0, "", None));
    }
}
