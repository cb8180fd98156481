//! `libfeige`: the C ABI of the Feige client SDK, for the Qt desktop client and any C or C++
//! program. The header `client-sdk/include/feige.h` is generated from this crate by cbindgen
//! (`FEIGE_BLESS=1 cargo test -p feige-ffi --test header` rewrites it); `docs/sdk.md` is the
//! guide, with the JSON of every method and event.
//!
//! Shape (after rustls-ffi, libmpv and TDLib): opaque handles; every fallible call returns an
//! `int32_t` status and writes outputs only on success; requests never block — `feige_call`
//! returns a request id at once and the completion arrives later as an event; one event queue
//! per client, drained by the application, with a wakeup callback and a wakeup descriptor.
//! Each client runs its own tokio runtime (one worker thread plus a small blocking pool).
//!
//! This crate is the SDK's FFI module: the only place in the workspace where `unsafe` is
//! allowed. Each unsafe block says why it is sound.
#![allow(unsafe_code)]

mod client;
mod encoding;
mod json;
mod methods;
mod panic;
mod queue;
mod status;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::time::Duration;

pub use client::FeigeClient;
pub use queue::FeigeEvent;
pub use status::{FeigeEventKind, FeigeStatus};

use json::Refusal;

use status::FeigeStatus::*;

/// The SDK version this header belongs to ("major.minor.patch"). (cbindgen cannot emit a
/// string constant; the header test writes it into the header from the package version.)
pub const FEIGE_VERSION: &str = "0.1.0";
/// Major part of the version.
pub const FEIGE_VERSION_MAJOR: u32 = 0;
/// Minor part of the version.
pub const FEIGE_VERSION_MINOR: u32 = 1;
/// Patch part of the version.
pub const FEIGE_VERSION_PATCH: u32 = 0;
/// The ABI version this header describes. It grows when functions or status codes are added;
/// nothing in the ABI is ever removed or renumbered. Compare with `feige_abi_version()` to
/// detect an older library at run time.
pub const FEIGE_ABI_VERSION: u32 = 1;

/// The SDK's version with a NUL terminator.
const VERSION_C: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// A NUL-terminated string argument as UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid during the call.
unsafe fn str_arg<'a>(p: *const c_char) -> Result<&'a str, FeigeStatus> {
    if p.is_null() {
        return Err(FEIGE_ERR_NULL);
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string valid for the call.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| FEIGE_ERR_UTF8)
}

/// The client behind a handle.
///
/// # Safety
/// `p` is NULL or a pointer from `feige_client_new` not yet given to `feige_client_free`.
unsafe fn client_arg<'a>(p: *const FeigeClient) -> Result<&'a FeigeClient, FeigeStatus> {
    // SAFETY: the caller promises a live handle or NULL; `as_ref` maps NULL to None.
    unsafe { p.as_ref() }.ok_or(FEIGE_ERR_NULL)
}

/// The event behind a handle.
///
/// # Safety
/// `p` is NULL or an event from `feige_poll_event`/`feige_wait_event` not yet freed.
unsafe fn event_arg<'a>(p: *const FeigeEvent) -> Option<&'a FeigeEvent> {
    // SAFETY: the caller promises a live event or NULL.
    unsafe { p.as_ref() }
}

thread_local! {
    /// What `feige_last_error` returns on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records the outcome of a call for `feige_last_error`: the refusal's text, or "" on success.
fn remember<T>(r: Result<T, Refusal>) -> Result<T, FeigeStatus> {
    let text = match &r {
        Ok(_) => CString::default(),
        // A message never contains NUL unless the input did; drop it rather than fail.
        Err(e) => CString::new(e.message.replace('\0', "")).unwrap_or_default(),
    };
    LAST_ERROR.with(|l| *l.borrow_mut() = text);
    r.map_err(|e| e.status)
}

/// A timeout in milliseconds: negative means none (wait forever).
fn timeout_of(ms: i32) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

/// The library's version, e.g. "0.1.0". Static: never free it. Any thread.
#[no_mangle]
pub extern "C" fn feige_version() -> *const c_char {
    VERSION_C.as_ptr().cast()
}

/// The library's ABI version (see `FEIGE_ABI_VERSION`). Any thread.
#[no_mangle]
pub extern "C" fn feige_abi_version() -> u32 {
    FEIGE_ABI_VERSION
}

/// Static English text for a status code ("unknown status" for a number the library does
/// not know). Never NULL; never free it. Any thread.
#[no_mangle]
pub extern "C" fn feige_status_str(status: i32) -> *const c_char {
    match FeigeStatus::from_code(status) {
        Some(s) => s.text().as_ptr(),
        None => c"unknown status".as_ptr(),
    }
}

/// Why the last `feige_client_new` or `feige_call` on the calling thread was refused, in
/// English, e.g. `login: missing "password"`; "" after one that succeeded. Never NULL. Owned
/// by the SDK and valid until the next `feige_client_new` or `feige_call` on this thread. For
/// developers and logs; programs test the status codes.
#[no_mangle]
pub extern "C" fn feige_last_error() -> *const c_char {
    panic::or(c"".as_ptr(), || LAST_ERROR.with(|l| l.borrow().as_ptr()))
}

/// Creates a client and starts connecting in the background; returns at once.
///
/// `config_json`: `{"server":"host:port","device":"desktop"}` plus optional
/// `"request_timeout_ms"` (default 10000), `"auto_sync"` (default true), `"client_name"`,
/// and for TLS `"tls": true` with `"ca_file"` (PEM) and optionally `"tls_server_name"`
/// (default: the host of `"server"`); `"outbox_file"` (the persistent outbox of
/// `send_message`, loaded here); `"backoff_initial_ms"` (100), `"backoff_max_ms"` (5000),
/// `"backoff_jitter_percent"` (0) for reconnects.
/// The connection comes and goes on its own (state events report it, and whether the session
/// is logged in); requests made before it is up wait for it. The request timeout bounds each
/// call from `feige_call` on, that wait included (`send_message` without an outbox: the SDK's
/// resend window, 30 s or the request timeout, whichever is longer; the server keeps a
/// stored `client_msg_id` for good, so a later resend is still answered as a duplicate).
///
/// On success `*out` receives a new client, owned by the caller until `feige_client_free`.
/// Any thread.
///
/// # Errors
/// `FEIGE_ERR_NULL`, `FEIGE_ERR_UTF8`, `FEIGE_ERR_JSON`, `FEIGE_ERR_PARAMS` (no `"server"`),
/// `FEIGE_ERR_IO` (threads or the wakeup socket pair could not be created).
///
/// # Safety
/// `config_json` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn feige_client_new(
    config_json: *const c_char,
    out: *mut *mut FeigeClient,
) -> i32 {
    panic::status(|| {
        let client = remember((|| {
            if out.is_null() {
                return Err(Refusal::status(FEIGE_ERR_NULL));
            }
            // SAFETY: the caller promises a NUL-terminated string or NULL.
            let config = unsafe { str_arg(config_json) }.map_err(Refusal::status)?;
            FeigeClient::start(config)
        })())?;
        // SAFETY: `out` was checked non-NULL above and the caller promises it is writable.
        unsafe { out.write(Box::into_raw(Box::new(client))) };
        Ok(())
    })
}

/// Shuts the client down (if `feige_client_shutdown` was not called) and releases it and
/// every event still queued. Events already taken stay valid until `feige_event_free`.
/// NULL is ignored.
///
/// Call it last, when no other call on this client is running, and never from the wakeup
/// callback. The callback is not called after this returns.
///
/// # Safety
/// `client` is NULL or a handle from `feige_client_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn feige_client_free(client: *mut FeigeClient) {
    panic::or((), || {
        if !client.is_null() {
            // SAFETY: the caller gives back ownership of a handle from `feige_client_new`.
            drop(unsafe { Box::from_raw(client) });
        }
    });
}

/// Shuts the client down: every request in flight completes at once with
/// `FEIGE_ERR_CANCELLED`, later calls fail with `FEIGE_ERR_SHUT_DOWN`, the delivered
/// positions are acked and the connection closed (waiting up to `timeout_ms` for that last
/// ack; 0 or negative closes at once),
/// and `{"state":"closed"}` is queued as the last event. Events already queued stay readable;
/// once they are read the event functions return `FEIGE_ERR_SHUT_DOWN`. A second call does
/// nothing and returns `FEIGE_OK`. Any thread except the wakeup callback's.
///
/// # Errors
/// `FEIGE_ERR_NULL`; `FEIGE_ERR_TIMEOUT` when the graceful close took longer than `timeout_ms`
/// (the client is shut down all the same).
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn feige_client_shutdown(client: *mut FeigeClient, timeout_ms: i32) -> i32 {
    panic::status(|| {
        // SAFETY: the caller promises a live handle or NULL.
        let client = unsafe { client_arg(client) }?;
        client.shutdown(timeout_of(timeout_ms).unwrap_or(Duration::ZERO))
    })
}

/// Starts a request and returns at once. `method` names it (docs/sdk.md lists every method
/// with its params and result: "register", "login", "send_message", "history", "group_create",
/// "recall", "room_join", "red_packet_send", "upload_file", "cancel", "cancel_send",
/// "reconnect_now"...); `params_json` is a JSON object (NULL = `{}`). Transfers also queue
/// `{"type":"progress"}` push events. With an outbox, `send_message` writes the message to
/// its file (and syncs it) before returning, and completes at once; `{"type":"outbox"}`
/// push events follow it.
/// On success `*request_id` receives the id that its completion event (`FEIGE_EVENT_RESPONSE`)
/// will carry; exactly one completion follows every successful call, also on shutdown. Any
/// thread.
///
/// The requests of one client reach the server in the order of their calls (their ids grow
/// in that order), many in flight at once, also those made while there is no connection.
///
/// # Errors
/// Refused at once, with no completion: `FEIGE_ERR_NULL`, `FEIGE_ERR_UTF8`,
/// `FEIGE_ERR_UNKNOWN_METHOD`, `FEIGE_ERR_JSON` (malformed), `FEIGE_ERR_PARAMS` (a field
/// missing or of the wrong type), `FEIGE_ERR_SHUT_DOWN`, `FEIGE_ERR_BUSY`.
///
/// # Safety
/// `client` is NULL or a live handle; strings are NULL or NUL-terminated; `request_id` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn feige_call(
    client: *mut FeigeClient,
    method: *const c_char,
    params_json: *const c_char,
    request_id: *mut u64,
) -> i32 {
    panic::status(|| {
        let id = remember((|| {
            // SAFETY: the caller promises a live handle or NULL.
            let client = unsafe { client_arg(client) }.map_err(Refusal::status)?;
            // SAFETY: the caller promises a NUL-terminated string or NULL.
            let method = unsafe { str_arg(method) }.map_err(Refusal::status)?;
            let params = if params_json.is_null() {
                None
            } else {
                // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
                Some(unsafe { str_arg(params_json) }.map_err(Refusal::status)?)
            };
            if request_id.is_null() {
                return Err(Refusal::status(FEIGE_ERR_NULL));
            }
            client.call(method, params)
        })())?;
        // SAFETY: `request_id` was checked non-NULL above and the caller promises it is
        // writable.
        unsafe { request_id.write(id) };
        Ok(())
    })
}

/// Writes an event to `out`.
///
/// # Safety
/// `out` is non-NULL and writable.
unsafe fn hand_out(
    got: Result<Option<FeigeEvent>, FeigeStatus>,
    out: *mut *mut FeigeEvent,
) -> Result<(), FeigeStatus> {
    match got? {
        Some(e) => {
            // SAFETY: the caller checked `out` is non-NULL; it promises it is writable.
            unsafe { out.write(Box::into_raw(Box::new(e))) };
            Ok(())
        }
        None => Err(FEIGE_NO_EVENT),
    }
}

/// Takes the oldest event without waiting. On `FEIGE_OK`, `*out` receives an event the caller
/// owns and frees with `feige_event_free`. Any thread (usually the GUI thread, after the
/// wakeup). After the wakeup callback, drain until it returns something other than
/// `FEIGE_OK`; with the wakeup descriptor, which stays readable while events are left, an
/// application may also take only some and wait for the descriptor again.
///
/// # Errors
/// `FEIGE_NO_EVENT` when the queue is empty; `FEIGE_ERR_SHUT_DOWN` when the client was shut
/// down and every event was read; `FEIGE_ERR_NULL`.
///
/// # Safety
/// `client` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn feige_poll_event(
    client: *mut FeigeClient,
    out: *mut *mut FeigeEvent,
) -> i32 {
    panic::status(|| {
        // SAFETY: the caller promises a live handle or NULL.
        let client = unsafe { client_arg(client) }?;
        if out.is_null() {
            return Err(FEIGE_ERR_NULL);
        }
        // SAFETY: `out` is non-NULL.
        unsafe { hand_out(client.shared.queue.pop(), out) }
    })
}

/// Like `feige_poll_event`, but waits up to `timeout_ms` for an event (negative = forever,
/// 0 = do not wait). Blocks the calling thread: use it from a thread of your own, not a GUI
/// thread. Any thread.
///
/// # Errors
/// `FEIGE_NO_EVENT` on timeout; `FEIGE_ERR_SHUT_DOWN` when the client was shut down and every
/// event was read; `FEIGE_ERR_NULL`.
///
/// # Safety
/// `client` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn feige_wait_event(
    client: *mut FeigeClient,
    timeout_ms: i32,
    out: *mut *mut FeigeEvent,
) -> i32 {
    panic::status(|| {
        // SAFETY: the caller promises a live handle or NULL.
        let client = unsafe { client_arg(client) }?;
        if out.is_null() {
            return Err(FEIGE_ERR_NULL);
        }
        let got = client.shared.queue.wait(timeout_of(timeout_ms));
        // SAFETY: `out` is non-NULL.
        unsafe { hand_out(got, out) }
    })
}

/// The event's kind: `FEIGE_EVENT_RESPONSE`, `FEIGE_EVENT_PUSH` or `FEIGE_EVENT_STATE`
/// (`FEIGE_ERR_NULL` for NULL). Any thread.
///
/// # Safety
/// `event` is NULL or a live event.
#[no_mangle]
pub unsafe extern "C" fn feige_event_kind(event: *const FeigeEvent) -> i32 {
    panic::or(FEIGE_ERR_PANIC as i32, || {
        // SAFETY: the caller promises a live event or NULL.
        match unsafe { event_arg(event) } {
            Some(e) => e.kind as i32,
            None => FEIGE_ERR_NULL as i32,
        }
    })
}

/// The request id a `FEIGE_EVENT_RESPONSE` completes (0 for other kinds and for NULL).
/// Any thread.
///
/// # Safety
/// `event` is NULL or a live event.
#[no_mangle]
pub unsafe extern "C" fn feige_event_request_id(event: *const FeigeEvent) -> u64 {
    panic::or(0, || {
        // SAFETY: the caller promises a live event or NULL.
        unsafe { event_arg(event) }.map_or(0, |e| e.request_id)
    })
}

/// How the request of a `FEIGE_EVENT_RESPONSE` ended: `FEIGE_OK`, or an error status whose
/// details are in the JSON's `"error"` object. `FEIGE_OK` for other kinds; `FEIGE_ERR_NULL`
/// for NULL. Any thread.
///
/// # Safety
/// `event` is NULL or a live event.
#[no_mangle]
pub unsafe extern "C" fn feige_event_status(event: *const FeigeEvent) -> i32 {
    panic::or(FEIGE_ERR_PANIC as i32, || {
        // SAFETY: the caller promises a live event or NULL.
        match unsafe { event_arg(event) } {
            Some(e) => e.status as i32,
            None => FEIGE_ERR_NULL as i32,
        }
    })
}

/// The event's UTF-8 JSON: `*utf8` receives a pointer to `*len` bytes, followed by a NUL byte
/// (not counted). The view is borrowed from the event and valid until `feige_event_free`.
/// `len` may be NULL. Any thread.
///
/// # Errors
/// `FEIGE_ERR_NULL` when `event` or `utf8` is NULL.
///
/// # Safety
/// `event` is NULL or a live event; `utf8` and `len` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn feige_event_json(
    event: *const FeigeEvent,
    utf8: *mut *const c_char,
    len: *mut usize,
) -> i32 {
    panic::status(|| {
        // SAFETY: the caller promises a live event or NULL.
        let e = unsafe { event_arg(event) }.ok_or(FEIGE_ERR_NULL)?;
        if utf8.is_null() {
            return Err(FEIGE_ERR_NULL);
        }
        // SAFETY: `utf8` is non-NULL and the caller promises it is writable.
        unsafe { utf8.write(e.json.as_ptr().cast()) };
        if !len.is_null() {
            // SAFETY: non-NULL, and the caller promises it is writable.
            unsafe { len.write(e.json_len()) };
        }
        Ok(())
    })
}

/// Releases an event taken with `feige_poll_event`/`feige_wait_event`, and with it the JSON
/// view. NULL is ignored. Any thread; an event may outlive its client.
///
/// # Safety
/// `event` is NULL or a live event, freed only once.
#[no_mangle]
pub unsafe extern "C" fn feige_event_free(event: *mut FeigeEvent) {
    panic::or((), || {
        if !event.is_null() {
            // SAFETY: the caller gives back ownership of an event the SDK boxed.
            drop(unsafe { Box::from_raw(event) });
        }
    });
}

/// Sets (or, with `cb` NULL, removes) the wakeup callback: `cb(user_data)` is called each time
/// the queue goes from empty to non-empty (and once soon after this call if events are already
/// waiting), so the application drains it (with `feige_poll_event` until `FEIGE_NO_EVENT`)
/// and is called again for the next event.
///
/// Threads: `cb` always runs on one of the SDK's own threads, never on a thread of the
/// application. It must return quickly and must not call any `feige_` function; a Qt
/// application posts to its GUI thread (`QMetaObject::invokeMethod(obj, ..., Qt::QueuedConnection)`).
/// After this returns, the previous callback is not running and is never called again; after
/// `feige_client_free` returns, no callback runs.
///
/// # Errors
/// `FEIGE_ERR_NULL` when `client` is NULL.
///
/// # Safety
/// `client` is NULL or a live handle; `cb` is NULL or a function callable from any thread with
/// `user_data` until it is replaced or the client freed.
#[no_mangle]
pub unsafe extern "C" fn feige_client_set_wakeup(
    client: *mut FeigeClient,
    cb: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
    user_data: *mut c_void,
) -> i32 {
    panic::status(|| {
        // SAFETY: the caller promises a live handle or NULL.
        let client = unsafe { client_arg(client) }?;
        let wakeup = cb.map(|cb| queue::Wakeup { cb, user_data });
        let waiting = client.shared.queue.set_wakeup(wakeup);
        client.shared.wake_soon(waiting);
        Ok(())
    })
}

/// The wakeup descriptor (Unix): readable exactly while events are waiting (level-triggered:
/// events left after a partial drain keep it readable), for
/// `QSocketNotifier(fd, QSocketNotifier::Read)`, `poll` or `select`. The SDK owns it: do not
/// read, write or close it; it stays valid until `feige_client_free`. On success `*fd`
/// receives it. Any thread.
///
/// # Errors
/// `FEIGE_ERR_NULL`; `FEIGE_ERR_UNSUPPORTED` outside Unix.
///
/// # Safety
/// `client` is NULL or a live handle; `fd` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn feige_client_wakeup_fd(client: *const FeigeClient, fd: *mut c_int) -> i32 {
    panic::status(|| {
        // SAFETY: the caller promises a live handle or NULL.
        let client = unsafe { client_arg(client) }?;
        if fd.is_null() {
            return Err(FEIGE_ERR_NULL);
        }
        #[cfg(unix)]
        {
            // SAFETY: `fd` is non-NULL and the caller promises it is writable.
            unsafe { fd.write(client.shared.queue.fd()) };
            Ok(())
        }
        #[cfg(not(unix))]
        {
            let _ = client;
            Err(FEIGE_ERR_UNSUPPORTED)
        }
    })
}
