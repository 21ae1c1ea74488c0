//! CORS for browser players on other origins (`[cors]`), and the cookie that carries the
//! playback token for players that cannot put it in the path.
//!
//! - A request with an `Origin` in `cors.allowed-origins` (or any, with `"*"` and no
//!   credentials: the config loader refuses `*` with `allow-credentials`) gets
//!   `Access-Control-Allow-Origin` on every answer — objects, grants and refusals alike, so a
//!   player sees a 403 as a 403 and not as a network error — plus `Vary: Origin` when the
//!   origin is echoed, `Access-Control-Allow-Credentials: true` with `allow-credentials` (the
//!   origin is then always echoed, never `*`), and `Access-Control-Expose-Headers` for
//!   `x-cache`, `Content-Range`, `Content-Length`, `Accept-Ranges`, `ETag`.
//! - Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered 204 with the
//!   allowed methods (GET, HEAD, OPTIONS), the requested headers among `range`,
//!   `authorization`, `if-none-match`, `if-range`, `content-type`, and `Max-Age`.
//! - A request from an origin not allowed gets no CORS headers (the browser then refuses to
//!   hand the answer to the page): the edge itself serves it as usual.

use http::{HeaderName, header};
use pingora::http::RequestHeader;
use streamgate_config::CorsSection;

/// Request headers a preflight may ask for.
const ALLOWED_REQUEST_HEADERS: [&str; 5] = [
    "range",
    "authorization",
    "if-none-match",
    "if-range",
    "content-type",
];
/// Response headers players may read.
const EXPOSED: &str = "x-cache, content-range, content-length, accept-ranges, etag";

/// The CORS policy of an edge.
#[derive(Debug, Clone)]
pub(crate) struct Cors {
    any: bool,
    origins: Vec<String>,
    credentials: bool,
    max_age: String,
    cross_site_cookie: bool,
}

/// Response headers for one request.
pub(crate) type CorsHeaders = Vec<(HeaderName, String)>;

impl Cors {
    pub(crate) fn from_conf(c: &CorsSection) -> Self {
        Self {
            // `*` never admits credentialed requests (the config loader refuses the pair; this
            // keeps it closed should a config ever be built another way).
            any: !c.allow_credentials && c.allowed_origins.iter().any(|o| o == "*"),
            origins: c.allowed_origins.clone(),
            credentials: c.allow_credentials,
            max_age: c.max_age.as_secs().to_string(),
            cross_site_cookie: c.cross_site_cookie,
        }
    }

    /// Whether the playback cookie must work cross-site (`SameSite=None; Secure`).
    pub(crate) fn cross_site_cookie(&self) -> bool {
        self.cross_site_cookie
    }

    fn allowed<'a>(&self, req: &'a RequestHeader) -> Option<&'a str> {
        let origin = req.headers.get(header::ORIGIN)?.to_str().ok()?;
        (self.any || self.origins.iter().any(|o| o == origin)).then_some(origin)
    }

    /// Headers for an actual (non-preflight) response to `req`; empty when CORS does not apply.
    pub(crate) fn headers(&self, req: &RequestHeader) -> CorsHeaders {
        let Some(origin) = self.allowed(req) else {
            return Vec::new();
        };
        let mut h = Vec::with_capacity(4);
        if self.any && !self.credentials {
            h.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_owned()));
        } else {
            h.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.to_owned()));
            h.push((header::VARY, "Origin".to_owned()));
        }
        if self.credentials {
            h.push((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true".to_owned()));
        }
        h.push((header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED.to_owned()));
        h
    }

    /// Headers for a preflight answer; empty when CORS does not apply.
    pub(crate) fn preflight(&self, req: &RequestHeader) -> CorsHeaders {
        let mut h = self.headers(req);
        if h.is_empty() {
            return h;
        }
        h.retain(|(n, _)| *n != header::ACCESS_CONTROL_EXPOSE_HEADERS);
        h.push((
            header::ACCESS_CONTROL_ALLOW_METHODS,
            "GET, HEAD, POST, OPTIONS".to_owned(),
        ));
        let asked = req
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let granted: Vec<&str> = asked
            .split(',')
            .map(str::trim)
            .filter(|a| {
                ALLOWED_REQUEST_HEADERS
                    .iter()
                    .any(|ok| ok.eq_ignore_ascii_case(a))
            })
            .collect();
        if !granted.is_empty() {
            h.push((header::ACCESS_CONTROL_ALLOW_HEADERS, granted.join(", ")));
        }
        h.push((header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone()));
        h
    }
}

/// Borrowed view for the reply helpers.
pub(crate) fn as_pairs(h: &CorsHeaders) -> Vec<(HeaderName, &str)> {
    h.iter().map(|(n, v)| (n.clone(), v.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn req(origin: Option<&str>) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/p/t/c/master.m3u8", None).unwrap();
        if let Some(o) = origin {
            r.insert_header("origin", o).unwrap();
        }
        r.insert_header("access-control-request-headers", "Range, X-Evil")
            .unwrap();
        r
    }

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        Cors::from_conf(&CorsSection {
            allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            allow_credentials: credentials,
            max_age: Duration::from_secs(60),
            cross_site_cookie: false,
        })
    }

    fn get(h: &CorsHeaders, n: HeaderName) -> Option<&str> {
        h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str())
    }

    #[test]
    fn wildcard_without_credentials_says_star() {
        let h = cors(&["*"], false).headers(&req(Some("http://a.example")));
        assert_eq!(get(&h, header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        assert_eq!(get(&h, header::ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
    }

    #[test]
    fn credentials_echo_a_listed_origin_never_star() {
        let h = cors(&["http://a.example"], true).headers(&req(Some("http://a.example")));
        assert_eq!(
            get(&h, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("http://a.example")
        );
        assert_eq!(get(&h, header::VARY), Some("Origin"));
        assert_eq!(
            get(&h, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
            Some("true")
        );
    }

    #[test]
    fn star_with_credentials_admits_nobody() {
        // Refused at config load; should such a policy exist anyway, it fails closed.
        assert!(
            cors(&["*"], true)
                .headers(&req(Some("http://evil.example")))
                .is_empty()
        );
    }

    #[test]
    fn unlisted_origins_and_no_origin_get_nothing() {
        let c = cors(&["https://app.example"], false);
        assert!(c.headers(&req(Some("https://evil.example"))).is_empty());
        assert!(c.headers(&req(None)).is_empty());
        assert!(!c.headers(&req(Some("https://app.example"))).is_empty());
        assert!(
            cors(&[], false)
                .headers(&req(Some("https://app.example")))
                .is_empty()
        );
    }

    #[test]
    fn preflight_grants_only_known_headers() {
        let h = cors(&["*"], false).preflight(&req(Some("http://a.example")));
        assert_eq!(get(&h, header::ACCESS_CONTROL_ALLOW_HEADERS), Some("Range"));
        assert_eq!(
            get(&h, header::ACCESS_CONTROL_ALLOW_METHODS),
            Some("GET, HEAD, POST, OPTIONS")
        );
        assert_eq!(get(&h, header::ACCESS_CONTROL_MAX_AGE), Some("60"));
    }
}
