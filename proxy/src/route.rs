//! Routing at the edge: what a request asks for, read once from its method, path and query,
//! before any key or token is looked at (that is the gate's job, in `edge`).
//!
//! | method | path | route |
//! |---|---|---|
//! | GET, HEAD | `/healthz`, `/readyz` | [`Route::Health`], [`Route::Ready`] |
//! | GET | `/v1/playback/{id}` (with grants) | [`Route::Grant`] |
//! | OPTIONS | `/v1/playback/{id}` (with grants: web apps send `Authorization`) | [`Route::Preflight`] |
//! | GET, HEAD | `/p/{token}/{id}/{path}` | [`Route::Object`] with [`PlayerPath::Token`] |
//! | GET, HEAD | `/c/{id}/{path}` (token in the `sgp_{id}` cookie) | [`Route::Object`] with [`PlayerPath::Cookie`] |
//! | OPTIONS | `/p/…`, `/c/…` | [`Route::Preflight`] |
//! | GET, HEAD | `/v/{id}/{path}` (with `server.edge-keys`) | [`Route::Child`] |
//!
//! Anything else is [`Route::NotFound`]; another method on a known route is
//! [`Route::MethodNotAllowed`] naming the allowed ones; a malformed object path is
//! [`Route::BadPath`] with the rule it broke.

use http::Method;
use streamgate_config::contract::{
    MEDIA_PREFIX, is_valid_content_id,
    layout::LICENSE,
    paths::{COOKIE_PREFIX, GATED_PREFIX, GRANT_PREFIX},
};

use crate::token_gate::{GatedPath, PathError};

/// Methods the object routes answer.
pub(crate) const OBJECT_ALLOW: &str = "GET, HEAD, OPTIONS";
/// Methods the health and media routes answer.
pub(crate) const READ_ALLOW: &str = "GET, HEAD";
/// Methods the grant route answers.
pub(crate) const GRANT_ALLOW: &str = "GET, OPTIONS";
/// `Allow` of the license route.
pub(crate) const LICENSE_ALLOW: &str = "POST, OPTIONS";

/// Which playlist a grant redirects to (`?redirect=hls|dash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Playlist {
    /// The HLS master playlist.
    Hls,
    /// The DASH manifest.
    Dash,
}

/// Where a player's object request carries its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlayerPath<'a> {
    /// `/p/{token}/{id}/{path}`: in the path.
    Token(GatedPath<'a>),
    /// `/c/{id}/{path}`: in the `sgp_{id}` cookie (the path's `token` is empty).
    Cookie(GatedPath<'a>),
}

impl<'a> PlayerPath<'a> {
    /// The object part (content id and path).
    pub(crate) fn object(&self) -> &GatedPath<'a> {
        match self {
            PlayerPath::Token(g) | PlayerPath::Cookie(g) => g,
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// Liveness.
    Health,
    /// Readiness.
    Ready,
    /// A playback grant.
    Grant {
        /// The content.
        content_id: &'a str,
        /// `?redirect=`: answer 302 to this playlist instead of JSON.
        redirect: Option<Playlist>,
        /// `?mode=cookie`: set the token as a cookie, answer token-free `/c/` URLs.
        cookie_mode: bool,
    },
    /// A player's object request.
    Object(PlayerPath<'a>),
    /// `POST {prefix}license`: a W3C ClearKey license request for the content.
    License(PlayerPath<'a>),
    /// A CORS preflight on an object route.
    Preflight,
    /// A child edge's `/v/{id}/{path}` (its edge key is checked by the gate).
    Child(GatedPath<'a>),
    /// A known route, another method.
    MethodNotAllowed {
        /// The `Allow` header.
        allow: &'static str,
    },
    /// A malformed object path.
    BadPath(PathError),
    /// No such route.
    NotFound,
}

impl Route<'_> {
    /// The `route` field of the request's log span.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Route::Health => "healthz",
            Route::Ready => "readyz",
            Route::Grant { .. } => "grant",
            Route::Object(_) | Route::Preflight | Route::BadPath(_) => "object",
            Route::License(_) => "license",
            Route::Child(_) => "child",
            Route::MethodNotAllowed { .. } | Route::NotFound => "other",
        }
    }
}

/// Routes a request. `grants`: the edge has `[session]`/`[entitlements]`; `children`: it has
/// `server.edge-keys`. Without them those routes do not exist (404).
pub(crate) fn route<'a>(
    method: &Method,
    path: &'a str,
    query: Option<&'a str>,
    grants: bool,
    children: bool,
) -> Route<'a> {
    let read_only = *method == Method::GET || *method == Method::HEAD;
    let object = |parsed: Option<Result<GatedPath<'a>, PathError>>,
                  as_player: fn(GatedPath<'a>) -> PlayerPath<'a>| {
        match parsed {
            None => Route::NotFound,
            Some(_) if *method == Method::OPTIONS => Route::Preflight,
            Some(Ok(g)) if g.path == LICENSE => {
                if *method == Method::POST {
                    Route::License(as_player(g))
                } else {
                    Route::MethodNotAllowed {
                        allow: LICENSE_ALLOW,
                    }
                }
            }
            Some(_) if !read_only => Route::MethodNotAllowed {
                allow: OBJECT_ALLOW,
            },
            Some(Err(e)) => Route::BadPath(e),
            Some(Ok(g)) => Route::Object(as_player(g)),
        }
    };
    match path {
        "/healthz" | "/readyz" if !read_only => Route::MethodNotAllowed { allow: READ_ALLOW },
        "/healthz" => Route::Health,
        "/readyz" => Route::Ready,
        p if grants && p.starts_with(GRANT_PREFIX) => {
            let content_id = &p[GRANT_PREFIX.len()..];
            if *method == Method::OPTIONS {
                return Route::Preflight;
            }
            if *method != Method::GET {
                return Route::MethodNotAllowed { allow: GRANT_ALLOW };
            }
            if !is_valid_content_id(content_id) {
                return Route::BadPath(PathError::BadContentId);
            }
            let params = || query.into_iter().flat_map(|q| q.split('&'));
            let redirect = params()
                .find_map(|kv| kv.strip_prefix("redirect="))
                .and_then(|v| match v {
                    "hls" => Some(Playlist::Hls),
                    "dash" => Some(Playlist::Dash),
                    _ => None,
                });
            let cookie_mode = params().any(|kv| kv == "mode=cookie");
            Route::Grant {
                content_id,
                redirect,
                cookie_mode,
            }
        }
        p if p.starts_with(GATED_PREFIX) => object(GatedPath::parse(p), PlayerPath::Token),
        p if p.starts_with(COOKIE_PREFIX) => object(GatedPath::parse_cookie(p), PlayerPath::Cookie),
        p if children && p.starts_with(MEDIA_PREFIX) => match GatedPath::parse_media(p) {
            None => Route::NotFound,
            Some(_) if !read_only => Route::MethodNotAllowed { allow: READ_ALLOW },
            Some(Err(e)) => Route::BadPath(e),
            Some(Ok(g)) => Route::Child(g),
        },
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Route<'_> {
        route(&Method::GET, path, None, true, true)
    }

    #[test]
    fn health_and_unknown_routes() {
        assert_eq!(get("/healthz"), Route::Health);
        assert_eq!(get("/readyz"), Route::Ready);
        assert_eq!(
            route(&Method::POST, "/healthz", None, true, true),
            Route::MethodNotAllowed { allow: READ_ALLOW }
        );
        assert_eq!(get("/"), Route::NotFound);
        assert_eq!(get("/pp/x/y/z"), Route::NotFound);
    }

    #[test]
    fn the_license_is_a_post_under_either_prefix() {
        let post = |p| route(&Method::POST, p, None, true, true);
        assert!(
            matches!(post("/p/tok/c1/license"), Route::License(PlayerPath::Token(g)) if g.token == "tok" && g.content_id == "c1")
        );
        assert!(
            matches!(post("/c/c1/license"), Route::License(PlayerPath::Cookie(g)) if g.content_id == "c1")
        );
        assert_eq!(
            get("/p/tok/c1/license"),
            Route::MethodNotAllowed {
                allow: LICENSE_ALLOW
            }
        );
        // Only the content's own `license`: not a folder's, not any other object by POST.
        assert_eq!(
            post("/p/tok/c1/720p/license"),
            Route::MethodNotAllowed {
                allow: OBJECT_ALLOW
            }
        );
        assert_eq!(
            route(&Method::OPTIONS, "/p/tok/c1/license", None, true, true),
            Route::Preflight
        );
    }

    #[test]
    fn player_paths_are_parsed_directly() {
        let Route::Object(PlayerPath::Token(g)) = get("/p/tok/c1/720p/seg-1.m4s") else {
            panic!("token path");
        };
        assert_eq!(
            (g.token, g.content_id, g.path),
            ("tok", "c1", "720p/seg-1.m4s")
        );
        let Route::Object(PlayerPath::Cookie(g)) = get("/c/c1/master.m3u8") else {
            panic!("cookie path");
        };
        assert_eq!((g.token, g.content_id, g.path), ("", "c1", "master.m3u8"));
        assert_eq!(get("/c/c1/../x"), Route::BadPath(PathError::DotSegment));
        assert_eq!(get("/c/c1/%2e%2e/x"), Route::BadPath(PathError::Encoded));
        assert_eq!(
            route(&Method::OPTIONS, "/c/c1/master.m3u8", None, true, true),
            Route::Preflight
        );
        assert_eq!(
            route(&Method::DELETE, "/p/t/c1/x", None, true, true),
            Route::MethodNotAllowed {
                allow: OBJECT_ALLOW
            }
        );
    }

    #[test]
    fn grants_and_children_exist_only_when_configured() {
        assert_eq!(
            route(
                &Method::GET,
                "/v1/playback/c1",
                Some("redirect=dash&mode=cookie"),
                true,
                false
            ),
            Route::Grant {
                content_id: "c1",
                redirect: Some(Playlist::Dash),
                cookie_mode: true
            }
        );
        assert_eq!(
            route(&Method::GET, "/v1/playback/c1", None, false, false),
            Route::NotFound
        );
        // A web app's grant request carries Authorization: the browser asks first.
        assert_eq!(
            route(&Method::OPTIONS, "/v1/playback/c1", None, true, false),
            Route::Preflight
        );
        assert_eq!(
            route(&Method::POST, "/v1/playback/c1", None, true, false),
            Route::MethodNotAllowed { allow: GRANT_ALLOW }
        );
        assert_eq!(
            get("/v1/playback/../x"),
            Route::BadPath(PathError::BadContentId)
        );
        assert!(matches!(get("/v/c1/seg.m4s"), Route::Child(_)));
        assert_eq!(
            route(&Method::GET, "/v/c1/seg.m4s", None, true, false),
            Route::NotFound
        );
        assert_eq!(get("/v/c1/../x"), Route::BadPath(PathError::DotSegment));
    }
}
