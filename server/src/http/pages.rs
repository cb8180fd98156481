//! The pages (docs/web.md): the room chat page `GET /home/index?appId=101`, the admin page
//! `GET /admin`, and their scripts and styles under `/web/`. The files in `server/web/` are
//! compiled into the binary, so the server serves them from any working directory; every
//! answer carries a strict Content-Security-Policy (scripts, styles and sockets of this origin
//! only, no inline code, no frames).

use std::sync::Arc;

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::reply::HttpError;
use crate::Shared;

/// The policy of every page and asset: nothing but this origin's files and WebSocket.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The assets under `/web/`: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    ("common.css", CSS, include_str!("../../web/common.css")),
    ("ws.js", JS, include_str!("../../web/ws.js")),
    ("dom.js", JS, include_str!("../../web/dom.js")),
    ("chat.js", JS, include_str!("../../web/chat.js")),
    ("chat-dm.js", JS, include_str!("../../web/chat-dm.js")),
    ("admin.js", JS, include_str!("../../web/admin.js")),
];

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/home/index", get(chat_page))
        .route("/admin", get(admin_page))
        .route("/web/{file}", get(asset))
}

/// Serves `GET /home/index?appId=...`: the page reads `appId` itself.
async fn chat_page() -> Response {
    page(HTML, include_str!("../../web/chat.html"))
}

/// Serves `GET /admin`.
async fn admin_page() -> Response {
    page(HTML, include_str!("../../web/admin.html"))
}

/// Serves `GET /web/<file>`: one of [`ASSETS`], else a JSON 404.
async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => page(content_type, body),
        None => HttpError::new(StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// A 200 answer with `body`, its type and the security headers.
fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_names_only_assets_that_exist() {
        for html in [
            include_str!("../../web/chat.html"),
            include_str!("../../web/admin.html"),
        ] {
            for part in html.split("/web/").skip(1) {
                let name = part.split('"').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == name),
                    "{name} is not served"
                );
            }
            assert!(
                !html.contains("<script>"),
                "inline script is refused by the CSP"
            );
            assert!(
                !html.contains("style="),
                "inline style is refused by the CSP"
            );
        }
    }
}
