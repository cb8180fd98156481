//! The rules for what a client says about a file: its name (metadata only, never a path)
//! and its MIME type.

use crate::error::RequestError;

/// Longest file name kept, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 255;

/// The name to keep for a file the client called `raw`: its last path component (after any
/// `/` or `\`), at most [`MAX_NAME_BYTES`], without control characters (NUL included), and
/// not empty, `.` or `..`. Names are only shown to users; files on disk are named by hash,
/// so a reserved device name such as `CON` is kept as given.
///
/// # Errors
/// `INVALID_ARGUMENT` saying which rule the name breaks.
pub(crate) fn file_name(raw: &str) -> Result<String, RequestError> {
    if raw.chars().any(char::is_control) {
        return Err(RequestError::invalid(
            "the file name holds a control character (NUL, newline...)",
        ));
    }
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    if last.len() > MAX_NAME_BYTES {
        return Err(RequestError::invalid(format!(
            "the file name is longer than {MAX_NAME_BYTES} bytes"
        )));
    }
    if last.trim().is_empty() || last == "." || last == ".." {
        return Err(RequestError::invalid(
            "the file needs a name (not empty, \".\" or \"..\")",
        ));
    }
    Ok(last.to_owned())
}

/// The MIME type to keep: "" becomes `application/octet-stream`; otherwise `type/subtype`
/// of printable ASCII without spaces, at most 127 bytes.
///
/// # Errors
/// `INVALID_ARGUMENT`.
pub(crate) fn mime(raw: &str) -> Result<String, RequestError> {
    if raw.is_empty() {
        return Ok("application/octet-stream".to_owned());
    }
    let ok = raw.len() <= 127
        && raw.bytes().all(|b| b.is_ascii_graphic())
        && raw.bytes().filter(|&b| b == b'/').count() == 1
        && !raw.starts_with('/')
        && !raw.ends_with('/');
    if ok {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(RequestError::invalid(
            "mime must be type/subtype (printable ASCII, at most 127 bytes)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{file_name, mime};

    #[test]
    fn hostile_names_are_cut_to_their_last_component_or_refused() {
        assert_eq!(file_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(file_name("/etc/shadow").unwrap(), "shadow");
        assert_eq!(file_name("C:\\Windows\\system.ini").unwrap(), "system.ini");
        assert_eq!(file_name("CON").unwrap(), "CON");
        assert_eq!(file_name("照片 1.png").unwrap(), "照片 1.png");
        assert!(file_name("a\0b").is_err());
        assert!(file_name("a\nb").is_err());
        assert!(file_name(&"x".repeat(10_000)).is_err());
        assert!(file_name(&"x".repeat(255)).is_ok());
        for bad in ["", " ", ".", "..", "a/..", "dir/", "../"] {
            assert!(file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mime_types_are_checked() {
        assert_eq!(mime("").unwrap(), "application/octet-stream");
        assert_eq!(mime("Image/PNG").unwrap(), "image/png");
        assert!(mime("image png").is_err());
        assert!(mime("text").is_err());
        assert!(mime("a/b/c").is_err());
        assert!(mime("a/b\n").is_err());
    }
}
