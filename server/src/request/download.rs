//! Download, DownloadMany and GetFiles: reading files the caller may read
//! ([`crate::files::readable_file`]), their bytes on the file pool.

use feige_protocol::{pb, ResponseResult};
use feige_storage::blobs;

use super::caller::{Caller, Reply};
use super::upload::io_error;
use crate::convert;
use crate::error::RequestError;
use crate::files::{disk, readable_file, ReadableFile};

/// Most bytes one Download answers.
pub(crate) const MAX_PART: usize = 256 * 1024;
/// The room a Download's reply needs besides its data.
pub(crate) const PART_REPLY: usize = MAX_PART + 1024;
/// Most items of one DownloadMany.
const MAX_ITEMS: usize = 64;
/// Most ids of one GetFiles.
const MAX_IDS: usize = 100;
/// What a FileData costs besides its data (ids, sizes, framing), counted per item.
const ITEM_OVERHEAD: usize = 64;

/// Serves `Download`: up to 256 KiB of a file (or its thumbnail) from `offset`, less when
/// `max_frame_len` is smaller (the answer stays within a reply page).
pub(crate) async fn download(me: Caller, d: pb::Download) -> Reply {
    let cap = MAX_PART.min(
        me.shared
            .config
            .reply_page_bytes()
            .saturating_sub(ITEM_OVERHEAD),
    );
    Ok(ResponseResult::Download(part(&me, &d, cap).await?.0))
}

/// Reads what `d` asks, at most `cap` bytes; returns the data and whether `cap` cut it.
async fn part(
    me: &Caller,
    d: &pb::Download,
    cap: usize,
) -> Result<(pb::FileData, bool), RequestError> {
    let mut file: ReadableFile = readable_file(&me.shared, me.user, d.file_id).await?;
    if d.thumbnail {
        let thumb = file.info.thumbnail_id;
        let info = match thumb {
            0 => None,
            id => me.shared.store.read(move |c| blobs::file(c, id)).await?,
        };
        let Some(info) = info else {
            return Err(RequestError::new(
                feige_protocol::ErrorCode::NotFound,
                "this file has no thumbnail (only images do)",
            ));
        };
        file.path = me.shared.files.blob_path(&info.sha256);
        file.info = info;
    }
    let size = file.info.size;
    if d.offset > size {
        return Err(RequestError::invalid(format!(
            "offset {} is past the end of the file ({size} bytes)",
            d.offset
        )));
    }
    let asked = match d.length {
        0 => MAX_PART,
        n => usize::try_from(n).unwrap_or(MAX_PART).min(MAX_PART),
    };
    let left = usize::try_from(size - d.offset).unwrap_or(usize::MAX);
    let want = asked.min(left);
    let take = want.min(cap);
    let (path, offset) = (file.path, d.offset);
    let data = if take == 0 {
        Vec::new()
    } else {
        me.shared
            .files
            .pool
            .run(take, move |()| disk::read_range(&path, offset, take))
            .await?
            .map_err(io_error)?
    };
    Ok((
        pb::FileData {
            file_id: d.file_id,
            offset: d.offset,
            data: data.into(),
            size,
            truncated: take < want,
            error: None,
        },
        take < want,
    ))
}

/// Serves `DownloadMany`: each item in order with its data or its own error, within one
/// reply page; an item cut by the page's room is `truncated`, and the items after it come
/// back truncated with no data.
pub(crate) async fn download_many(me: Caller, r: pb::DownloadMany) -> Reply {
    if r.items.len() > MAX_ITEMS {
        return Err(RequestError::invalid(format!(
            "at most {MAX_ITEMS} items per DownloadMany"
        )));
    }
    let mut room = me.shared.config.reply_page_bytes();
    let mut items = Vec::with_capacity(r.items.len());
    for d in &r.items {
        let cap = room.saturating_sub(ITEM_OVERHEAD);
        match part(&me, d, cap).await {
            Ok((data, _)) => {
                room = room.saturating_sub(ITEM_OVERHEAD + data.data.len());
                items.push(data);
            }
            Err(e) => {
                room = room.saturating_sub(ITEM_OVERHEAD + e.message.len());
                items.push(pb::FileData {
                    file_id: d.file_id,
                    error: Some(pb::Error {
                        code: e.code as i32,
                        message: e.message,
                        retry_after_ms: e.retry_after_ms,
                        challenge: String::new(),
                    }),
                    ..pb::FileData::default()
                });
            }
        }
    }
    Ok(ResponseResult::DownloadMany(pb::FileDataList { items }))
}

/// Serves `GetFiles`: the metadata of each file, in order; refused as a whole, naming the
/// file, when one of them may not be read.
pub(crate) async fn get_files(me: Caller, r: pb::GetFiles) -> Reply {
    if r.file_ids.len() > MAX_IDS {
        return Err(RequestError::invalid(format!(
            "at most {MAX_IDS} file ids per GetFiles"
        )));
    }
    let mut files = Vec::with_capacity(r.file_ids.len());
    for &id in &r.file_ids {
        match readable_file(&me.shared, me.user, id).await {
            Ok(f) => files.push(convert::file_info(&f.info)),
            Err(e) => {
                return Err(RequestError {
                    message: format!("file {id}: {}", e.message),
                    ..e
                })
            }
        }
    }
    Ok(ResponseResult::FileInfo(pb::FileList { files }))
}
