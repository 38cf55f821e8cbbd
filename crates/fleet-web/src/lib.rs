//! fleetd's web apps: FleetNow (`/`, `/now`), FleetOps (`/ops`) and the login page (`/login`).
//!
//! The apps are built from `web/src` into `web/dist` with `npm run build` (esbuild) and that
//! output is checked in: this crate embeds it, so `cargo build` alone gives a binary that serves
//! them (debug builds read `web/dist` from disk instead, so a rebuilt front end shows on reload).
//! Each page gets its run-time settings (the map's tile source) written into it as JSON.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use fleet_http::auth::session;
use serde::Serialize;
use std::sync::Arc;

#[derive(rust_embed::Embed)]
#[folder = "../../web/dist/"]
struct Dist;

/// Where the pages' placeholder for their settings is.
const CONFIG_MARKER: &str = "<!--fleetd-config-->";

/// Settings the pages read at run time.
#[derive(Debug, Clone, Serialize)]
pub struct WebConfig {
    /// Map tile URL template (`https://tile.example.org/{z}/{x}/{y}.png`); empty: the map
    /// is drawn on a plain background.
    pub tile_url: String,
    /// Attribution shown on the map for the tiles.
    pub tile_attribution: String,
    /// fleetd's version, shown in the apps.
    pub version: String,
}

#[derive(Debug)]
struct Pages {
    config: serde_json::Value,
    csp: HeaderValue,
}

/// The web apps' routes (no state needed from the rest of fleetd).
pub fn router(config: WebConfig) -> Router {
    let pages = Arc::new(Pages {
        config: serde_json::to_value(&config).unwrap_or_default(),
        csp: content_security_policy(&config.tile_url),
    });
    Router::new()
        .route("/", get(now_page))
        .route("/now", get(now_page))
        // notification links name `/now/?device=…&at=…`
        .route("/now/", get(now_page))
        .route("/ops", get(ops_page))
        .route("/ops/", get(ops_page))
        .route("/login", get(login_page))
        .route("/assets/{*path}", get(asset))
        .with_state(pages)
}

async fn now_page(State(pages): State<Arc<Pages>>, uri: Uri, headers: HeaderMap) -> Response {
    app_page(&pages, "now", &uri, &headers)
}

async fn ops_page(State(pages): State<Arc<Pages>>, uri: Uri, headers: HeaderMap) -> Response {
    app_page(&pages, "ops", &uri, &headers)
}

/// The login page, told where to go after signing in: its `next` resolved to a path of this
/// origin (the page's script checks again).
async fn login_page(State(pages): State<Arc<Pages>>, RawQuery(query): RawQuery) -> Response {
    let next = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| same_origin_path(&v))
        .unwrap_or_else(|| "/".to_owned());
    let mut config = pages.config.clone();
    if let Some(fields) = config.as_object_mut() {
        fields.insert("next".to_owned(), serde_json::Value::String(next));
    }
    page_with(&pages, "login", &config)
}

/// `next` resolved against this origin, kept only when it stays on it: its path, query and
/// fragment, or `/`. Browsers read `/\evil.example` as `//evil.example`, another host, and
/// so does the WHATWG URL parser used here.
pub fn same_origin_path(next: &str) -> String {
    const BASE: &str = "http://fleetd.invalid/";
    let Ok(base) = url::Url::parse(BASE) else { return "/".to_owned() };
    match base.join(next) {
        Ok(url) if url.origin() == base.origin() && !url.path().starts_with("//") => {
            let mut path = url.path().to_owned();
            if let Some(q) = url.query() {
                path.push('?');
                path.push_str(q);
            }
            if let Some(f) = url.fragment() {
                path.push('#');
                path.push_str(f);
            }
            path
        }
        _ => "/".to_owned(),
    }
}

/// An app page, or a redirect to the login page for a visitor without a session (an expired
/// session is caught by the app itself, on its first API call).
fn app_page(pages: &Pages, name: &str, uri: &Uri, headers: &HeaderMap) -> Response {
    if session::cookie_value(headers).is_none() {
        let next = same_origin_path(uri.path_and_query().map_or("/", |p| p.as_str()));
        let location = format!(
            "/login?next={}",
            form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        return (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    }
    page(pages, name)
}

fn page(pages: &Pages, name: &str) -> Response {
    page_with(pages, name, &pages.config)
}

fn page_with(pages: &Pages, name: &str, config: &serde_json::Value) -> Response {
    // `<` escaped so nothing in a setting can close the script element
    let config_json =
        serde_json::to_string(config).unwrap_or_else(|_| "{}".into()).replace('<', "\\u003c");
    let Some(file) = Dist::get(&format!("{name}.html")) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "web app missing from this build")
            .into_response();
    };
    let html = String::from_utf8_lossy(&file.data).replacen(
        CONFIG_MARKER,
        &format!(r#"<script id="fleetd-config" type="application/json">{config_json}</script>"#),
        1,
    );
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            // pages name their bundles by hash: always revalidate the page, never the bundles
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, pages.csp.clone()),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        ],
        html,
    )
        .into_response()
}

/// A bundle, stylesheet or image from `web/dist/assets`; their names carry a content hash, so
/// they may be cached for good.
async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(file) = Dist::get(&format!("assets/{path}")) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let mime = HeaderValue::from_str(file.metadata.mimetype())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        [(header::ETAG, etag)],
        file.data.into_owned(),
    )
        .into_response()
}

/// Scripts and data from fleetd only; images also from the tile server's origin. Inline
/// styles are allowed because the map library positions its elements with them.
fn content_security_policy(tile_url: &str) -> HeaderValue {
    let tiles = tile_origin(tile_url).map(|o| format!(" {o}")).unwrap_or_default();
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:{tiles}; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'self'"))
}

/// `https://{s}.tile.example.org/{z}/{x}/{y}.png` → `https://*.tile.example.org`.
fn tile_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    let host = host.replace("{s}", "*");
    host.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*'))
        .then(|| format!("{scheme}://{host}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_origins_allow_subdomain_templates_and_reject_junk() {
        assert_eq!(
            tile_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png").as_deref(),
            Some("https://*.tile.example.org")
        );
        assert_eq!(
            tile_origin("http://127.0.0.1:9000/tiles/{z}/{x}/{y}.png").as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(tile_origin(""), None);
        assert_eq!(tile_origin("javascript://x"), None);
        assert_eq!(tile_origin("https://evil.org; script-src *"), None);
    }
}
