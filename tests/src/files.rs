//! Helpers for the file tests: uploading and downloading through `Client::request`, test
//! images, and where the server keeps a blob.

use std::path::{Path, PathBuf};
use std::time::Duration;

use feige_client::{Client, ClientError};
use feige_protocol::{pb, RequestKind, ResponseResult};
use feige_server::Config;

/// The chunk size of uploads.
pub const CHUNK: usize = 256 * 1024;

/// Settings for file tests: unused files go at once (no grace), swept every 50 ms.
pub fn quick_sweep(c: &mut Config) {
    c.file_grace_ms = 0;
    c.file_sweep_ms = 50;
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// `n` bytes that differ with `seed`.
pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// A PNG of `w` × `h` pixels in a colour picked by `seed`.
pub fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([seed, (x % 256) as u8, (y % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// UploadBegin for `data`.
pub async fn begin(
    c: &Client,
    name: &str,
    mime: &str,
    data: &[u8],
) -> Result<pb::UploadState, ClientError> {
    let r = c
        .request(RequestKind::UploadBegin(pb::UploadBegin {
            name: name.into(),
            size: data.len() as u64,
            sha256: sha256(data).into(),
            mime: mime.into(),
            duration_ms: 0,
        }))
        .await?;
    match r {
        ResponseResult::UploadBegin(s) => Ok(s),
        other => panic!("UploadBegin answered {other:?}"),
    }
}

/// UploadChunk `index` of an upload with `data` (the chunk's bytes).
pub async fn chunk(
    c: &Client,
    upload_id: u64,
    index: u32,
    data: &[u8],
) -> Result<pb::ChunkOk, ClientError> {
    let r = c
        .request(RequestKind::UploadChunk(pb::UploadChunk {
            upload_id,
            index,
            data: data.to_vec().into(),
        }))
        .await?;
    match r {
        ResponseResult::UploadChunk(ok) => Ok(ok),
        other => panic!("UploadChunk answered {other:?}"),
    }
}

/// Chunk `index` of `data`.
pub fn part(data: &[u8], index: usize) -> &[u8] {
    let end = ((index + 1) * CHUNK).min(data.len());
    &data[index * CHUNK..end]
}

/// UploadFinish.
pub async fn finish(c: &Client, upload_id: u64) -> Result<pb::FileInfo, ClientError> {
    match c
        .request(RequestKind::UploadFinish(pb::UploadFinish { upload_id }))
        .await?
    {
        ResponseResult::UploadFinish(f) => Ok(f),
        other => panic!("UploadFinish answered {other:?}"),
    }
}

/// Uploads `data` whole (the chunks the server lacks, in order) and returns the file.
pub async fn upload(c: &Client, name: &str, mime: &str, data: &[u8]) -> pb::FileInfo {
    let state = begin(c, name, mime, data).await.unwrap();
    if state.complete {
        return state.file.unwrap();
    }
    for i in 0..state.chunk_count as usize {
        if state
            .received
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
        {
            continue;
        }
        chunk(c, state.upload_id, i as u32, part(data, i))
            .await
            .unwrap();
    }
    finish(c, state.upload_id).await.unwrap()
}

/// Download of `length` bytes of `file_id` from `offset`.
pub async fn download(
    c: &Client,
    file_id: u64,
    offset: u64,
    length: u32,
    thumbnail: bool,
) -> Result<pb::FileData, ClientError> {
    match c
        .request(RequestKind::Download(pb::Download {
            file_id,
            offset,
            length,
            thumbnail,
        }))
        .await?
    {
        ResponseResult::Download(d) => Ok(d),
        other => panic!("Download answered {other:?}"),
    }
}

/// The whole file (or its thumbnail), in 256 KiB parts.
pub async fn download_all(
    c: &Client,
    file_id: u64,
    thumbnail: bool,
) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    loop {
        let d = download(c, file_id, out.len() as u64, 0, thumbnail).await?;
        out.extend_from_slice(&d.data);
        if d.data.is_empty() || out.len() as u64 >= d.size {
            return Ok(out);
        }
    }
}

/// Where the server keeps the blob with this SHA-256 under `data_dir`.
pub fn blob_path(data_dir: &Path, sha256: &[u8]) -> PathBuf {
    let hex: String = sha256.iter().map(|b| format!("{b:02x}")).collect();
    data_dir.join("files").join(&hex[..2]).join(&hex)
}

/// Waits (10 s at most) until `path` is gone; false if it stays.
pub async fn gone(path: &Path) -> bool {
    for _ in 0..200 {
        if !path.exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(all_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
