//! The line grammar SIWE and SIWS share after the statement, and the RFC 3986 pieces (scheme,
//! authority, URI, origin) both formats use.

use super::{Fields, Times};

/// Longest message text accepted before parsing (bounds the work an attacker can cause).
pub const MAX_MESSAGE_LEN: usize = 4096;
const MAX_NONCE_LEN: usize = 128;
const MAX_LINE_LEN: usize = 1024;

/// Why a message text is not a well-formed sign-in message. Every variant maps to the wire code
/// `malformed_message`; [`MessageError::code`] names the precise cause for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Longer than [`MAX_MESSAGE_LEN`] bytes, or a line longer than 1024.
    #[error("message too long")]
    TooLong,
    /// A carriage return, tab or other control character (lines end with `\n` only).
    #[error("control character in message")]
    ControlCharacter,
    /// The first line is not `{domain} wants you to sign in with your … account:`.
    #[error("bad header line")]
    BadHeader,
    /// The scheme before `://` is not an RFC 3986 scheme.
    #[error("bad scheme")]
    BadScheme,
    /// The domain is not an RFC 3986 authority.
    #[error("bad domain")]
    BadDomain,
    /// The address line is not an address of this chain family.
    #[error("bad address")]
    BadAddress,
    /// An Ethereum address that is not EIP-55 checksummed (all-lowercase and all-uppercase
    /// addresses are refused too: the message must carry the checksummed form).
    #[error("address is not eip-55 checksummed")]
    BadChecksum,
    /// The blank lines around the statement are not where the format puts them.
    #[error("bad blank-line layout")]
    BadLayout,
    /// The statement is empty or has characters the format does not allow.
    #[error("bad statement")]
    BadStatement,
    /// A required field is missing (named by its label).
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A line that is no known field, a field out of order, or text after the last field.
    #[error("unexpected line {0}")]
    UnexpectedLine(usize),
    /// `URI` or a resource is not an RFC 3986 URI.
    #[error("bad uri")]
    BadUri,
    /// `Version` is not `1`.
    #[error("unsupported version")]
    BadVersion,
    /// `Chain ID` is not in this format's chain-id syntax.
    #[error("bad chain id")]
    BadChainId,
    /// `Nonce` is shorter than 8 or not alphanumeric.
    #[error("bad nonce")]
    BadNonce,
    /// A timestamp is not an RFC 3339 date-time (named by its label).
    #[error("bad timestamp in {0}")]
    BadTimestamp(&'static str),
    /// `Request ID` has characters the format does not allow.
    #[error("bad request id")]
    BadRequestId,
}

impl MessageError {
    /// Stable snake_case code of the precise cause (logs and metric labels).
    pub fn code(self) -> &'static str {
        match self {
            MessageError::TooLong => "too_long",
            MessageError::ControlCharacter => "control_character",
            MessageError::BadHeader => "bad_header",
            MessageError::BadScheme => "bad_scheme",
            MessageError::BadDomain => "bad_domain",
            MessageError::BadAddress => "bad_address",
            MessageError::BadChecksum => "bad_checksum",
            MessageError::BadLayout => "bad_layout",
            MessageError::BadStatement => "bad_statement",
            MessageError::MissingField(_) => "missing_field",
            MessageError::UnexpectedLine(_) => "unexpected_line",
            MessageError::BadUri => "bad_uri",
            MessageError::BadVersion => "bad_version",
            MessageError::BadChainId => "bad_chain_id",
            MessageError::BadNonce => "bad_nonce",
            MessageError::BadTimestamp(_) => "bad_timestamp",
            MessageError::BadRequestId => "bad_request_id",
        }
    }
}

/// Character-level limits every message obeys before it is split into lines.
pub(crate) fn precheck(text: &str) -> Result<(), MessageError> {
    if text.len() > MAX_MESSAGE_LEN {
        return Err(MessageError::TooLong);
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(MessageError::ControlCharacter);
    }
    if text.split('\n').any(|l| l.len() > MAX_LINE_LEN) {
        return Err(MessageError::TooLong);
    }
    Ok(())
}

/// Parses `URI` … `Resources` from `lines` (index `first` is the 0-based line number of
/// `lines[0]`, for errors). `request_id_ok` is the format's `Request ID` charset.
pub(crate) fn parse_fields<'a>(
    lines: &[&'a str],
    first: usize,
    chain_id_ok: fn(&str) -> bool,
    request_id_ok: fn(&str) -> bool,
) -> Result<Fields, MessageError> {
    let mut i = 0;
    let mut take = |label: &'static str| -> Option<&'a str> {
        let line: &'a str = lines.get(i)?;
        let v = line.strip_prefix(label)?;
        i += 1;
        Some(v)
    };
    let uri = take("URI: ").ok_or(MessageError::MissingField("URI"))?;
    let version = take("Version: ").ok_or(MessageError::MissingField("Version"))?;
    let chain_id = take("Chain ID: ").ok_or(MessageError::MissingField("Chain ID"))?;
    let nonce = take("Nonce: ").ok_or(MessageError::MissingField("Nonce"))?;
    let issued_at = take("Issued At: ").ok_or(MessageError::MissingField("Issued At"))?;
    let expiration_time = take("Expiration Time: ");
    let not_before = take("Not Before: ");
    let request_id = take("Request ID: ");
    let resources_header = lines.get(i).is_some_and(|l| *l == "Resources:");
    let mut resources = Vec::new();
    if resources_header {
        i += 1;
        while let Some(r) = lines.get(i).and_then(|l| l.strip_prefix("- ")) {
            if !is_uri(r) {
                return Err(MessageError::BadUri);
            }
            resources.push(r.to_owned());
            i += 1;
        }
    }
    if i < lines.len() {
        return Err(MessageError::UnexpectedLine(first + i + 1));
    }
    if !is_uri(uri) {
        return Err(MessageError::BadUri);
    }
    if version != "1" {
        return Err(MessageError::BadVersion);
    }
    if !chain_id_ok(chain_id) {
        return Err(MessageError::BadChainId);
    }
    if nonce.len() < 8
        || nonce.len() > MAX_NONCE_LEN
        || !nonce.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(MessageError::BadNonce);
    }
    if request_id.is_some_and(|r| !request_id_ok(r)) {
        return Err(MessageError::BadRequestId);
    }
    let times = Times {
        issued_at: rfc3339(issued_at, "Issued At")?,
        expiration_time: expiration_time
            .map(|t| rfc3339(t, "Expiration Time"))
            .transpose()?,
        not_before: not_before.map(|t| rfc3339(t, "Not Before")).transpose()?,
    };
    Ok(Fields {
        uri: uri.to_owned(),
        chain_id: chain_id.to_owned(),
        nonce: nonce.to_owned(),
        times,
        request_id: request_id.map(str::to_owned),
        resources,
    })
}

fn rfc3339(s: &str, field: &'static str) -> Result<i64, MessageError> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| MessageError::BadTimestamp(field))
}

/// Splits `[scheme "://"] domain` and checks both against RFC 3986.
pub(crate) fn split_origin(s: &str) -> Result<(Option<&str>, &str), MessageError> {
    let (scheme, domain) = match s.split_once("://") {
        Some((sc, d)) => {
            if !is_scheme(sc) {
                return Err(MessageError::BadScheme);
            }
            (Some(sc), d)
        }
        None => (None, s),
    };
    if !is_authority(domain) {
        return Err(MessageError::BadDomain);
    }
    Ok((scheme, domain))
}

fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(c: u8) -> bool {
    matches!(
        c,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

fn pct_ok(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

fn is_authority(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|c| {
            is_unreserved(c) || is_sub_delim(c) || matches!(c, b':' | b'@' | b'[' | b']' | b'%')
        })
        && pct_ok(s)
}

/// RFC 3986 `*pchar` (SIWE `request-id`).
pub(crate) fn is_pchars(s: &str) -> bool {
    s.bytes()
        .all(|c| is_unreserved(c) || is_sub_delim(c) || matches!(c, b':' | b'@' | b'%'))
        && pct_ok(s)
}

/// An RFC 3986 URI: a scheme, `:`, then only URI characters with well-formed `%` escapes.
pub(crate) fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    is_scheme(scheme)
        && rest.bytes().all(|c| {
            is_unreserved(c)
                || is_sub_delim(c)
                || matches!(c, b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@' | b'%')
        })
        && pct_ok(rest)
}

/// `scheme://host[:port]` of a hierarchical URI, lowercased, default port dropped; `None` for
/// URIs without an authority or with userinfo.
pub(crate) fn uri_origin(uri: &str) -> Option<String> {
    if !is_uri(uri) {
        return None;
    }
    let (scheme, rest) = uri.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let mut authority = authority.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    if let Some(d) = default.filter(|d| authority.ends_with(d)) {
        authority.truncate(authority.len() - d.len());
    }
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            uri_origin("https://A.example:443/x?y").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            uri_origin("http://localhost:3000").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(uri_origin("https://u@a.example/"), None);
        assert_eq!(uri_origin("urn:x:y"), None);
        assert_eq!(uri_origin("https://a b"), None);
    }

    #[test]
    fn uris_and_authorities() {
        assert!(is_uri(
            "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/"
        ));
        assert!(is_uri("https://a.example/p?q=1#f"));
        assert!(!is_uri("https://a.example/%zz"));
        assert!(!is_uri("no scheme"));
        assert!(!is_uri("1http://x"));
        assert!(split_origin("https://a.example:8443").is_ok());
        assert_eq!(split_origin("a b"), Err(MessageError::BadDomain));
        assert_eq!(split_origin("1x://a"), Err(MessageError::BadScheme));
    }
}
