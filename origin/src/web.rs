//! The web app (`[web]`): `GET /` and `GET /watch/{id}` answer the app's `index.html`, the edge's
//! URL written in, under a strict Content-Security-Policy; `GET /assets/{file}` answers the
//! content-hashed bundles `web/build.mjs` made, cached for a year.
//!
//! ```text
//!  /, /watch/{id}   index.html   Cache-Control: no-cache, CSP (scripts and styles from this
//!                                origin only, no inline, media and fetches from here and the
//!                                edge), nosniff, no referrer, no framing
//!  /assets/{file}   from dir/assets, names [A-Za-z0-9_.-] only (nothing outside the folder),
//!                   immutable; the build's `{file}.gz` when the browser accepts gzip
//! ```

use std::{path::PathBuf, sync::Arc};

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use streamgate_config::WebConfig;

use crate::{AppError, AppState, StartError, error::AppResult};

/// The loaded app: the page (read once, edge URL filled in) and where its assets are.
pub(crate) struct WebApp {
    page: axum::body::Bytes,
    csp: HeaderValue,
    assets: PathBuf,
}

impl WebApp {
    /// Reads `index.html` and prepares its headers.
    pub(crate) fn load(cfg: &WebConfig) -> Result<Arc<Self>, StartError> {
        let path = cfg.dir.join("index.html");
        let index = std::fs::read_to_string(&path)
            .map_err(|e| StartError::Web(format!("{}: {e}", path.display())))?;
        let edge = cfg.edge_url.trim_end_matches('/');
        // Validated at start-up: http(s)://host[:port], no quote, space or semicolon.
        let page = index.replace("__EDGE_URL__", edge);
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' {edge} data:; \
             media-src 'self' {edge} blob:; connect-src 'self' {edge}; worker-src 'self' blob:; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        let csp = HeaderValue::from_str(&csp)
            .map_err(|_| StartError::Web("web.edge-url: not usable in a header".into()))?;
        Ok(Arc::new(Self {
            page: page.into(),
            csp,
            assets: cfg.dir.join("assets"),
        }))
    }
}

fn common(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// `GET /` and `GET /watch/{id}`: the app's page (it routes itself).
pub(crate) async fn page(State(st): State<AppState>) -> AppResult<Response> {
    let web = st.web.as_ref().ok_or(AppError::NotFound("no web app"))?;
    let mut h = HeaderMap::new();
    common(&mut h);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, web.csp.clone());
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok((StatusCode::OK, h, web.page.clone()).into_response())
}

/// `GET /assets/{file}`: one built file, by its hashed name.
pub(crate) async fn asset(
    State(st): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let web = st.web.as_ref().ok_or(AppError::NotFound("no web app"))?;
    let plain = !file.is_empty()
        && file.len() <= 128
        && !file.starts_with('.')
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !plain {
        return Err(AppError::NotFound("no such asset"));
    }
    let content_type = match file.rsplit_once('.').map(|(_, e)| e) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => return Err(AppError::NotFound("no such asset")),
    };
    // The build's gzip copy to a browser that takes it, else the file itself.
    let gzip = accepts_gzip(&headers);
    let mut bytes = None;
    if gzip {
        bytes = read_asset(&web.assets, &format!("{file}.gz")).await?;
    }
    let encoded = bytes.is_some();
    let Some(bytes) = (match bytes {
        Some(b) => Some(b),
        None => read_asset(&web.assets, &file).await?,
    }) else {
        return Err(AppError::NotFound("no such asset"));
    };
    let mut h = HeaderMap::new();
    common(&mut h);
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if encoded {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok((StatusCode::OK, h, Body::from(bytes)).into_response())
}

/// Whether `Accept-Encoding` takes gzip (and does not refuse it with `q=0`).
fn accepts_gzip(h: &HeaderMap) -> bool {
    h.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// An asset's bytes; `None` when there is no such file.
async fn read_asset(dir: &std::path::Path, name: &str) -> AppResult<Option<Vec<u8>>> {
    match tokio::fs::read(dir.join(name)).await {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AppError::Internal(format!("reading asset {name}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_taken_unless_refused() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(accepts_gzip(&h("gzip, deflate, br")));
        assert!(accepts_gzip(&h("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&h("*")));
        assert!(!accepts_gzip(&h("gzip;q=0, br")));
        assert!(!accepts_gzip(&h("br")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
