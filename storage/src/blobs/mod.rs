//! Files: content-addressed blobs, one file row per upload (its name and owner), unfinished
//! uploads with their chunk bitmap, the messages, avatars and stickers that use a file
//! (reference counts), and file offers' answers. The bytes live on disk (the server's
//! `files` module); this is the metadata.

pub(crate) mod migration;
mod read;
mod record;
mod write;

#[cfg(test)]
mod tests;

pub(crate) use read::message_for;
pub use read::{
    access, file, files_owned_bytes, find_blob, find_upload, is_sticker, live_uploads, offer_state,
    offer_states, stickers, upload, Access, OFFER_ACCEPTED, OFFER_DECLINED, OFFER_PENDING,
};
pub use record::{hex, FileRecord, FileRef, UploadRecord, CHUNK_SIZE};
pub use write::{
    add_sticker, answer_offer, begin_upload, dedup_file, discard_upload, finish_upload,
    record_chunk, remove_sticker, sweep, Finished, NewBlob, Swept,
};
