//! Reading `eth_call` errors: which are the contract's answer (a revert, an EVM halt) and which
//! the endpoint's failure; and scrubbing URLs (which may carry API keys) from error text.

use alloy::transports::{RpcError, TransportError};

/// JSON-RPC error messages that mean the call ran and the contract did not return normally:
/// geth, reth, erigon and nethermind say `execution reverted` (code 3) for a revert and name
/// the halt otherwise (`invalid opcode: INVALID`, `stack underflow`, `out of gas`); anvil says
/// `EVM error InvalidFEOpcode`. Lowercase, matched as substrings.
const CONTRACT_FAILURES: &[&str] = &[
    "revert",
    "evm error",
    "invalid opcode",
    "invalid jump",
    "stack underflow",
    "stack overflow",
    "out of gas",
];

/// Whether an `eth_call` error is the contract's answer (a revert or an EVM halt) rather than
/// the endpoint's failure. Only JSON-RPC error responses qualify: an HTTP error or a transport
/// failure never does.
pub(super) fn is_contract_failure(e: &TransportError) -> bool {
    let RpcError::ErrorResp(p) = e else {
        return false;
    };
    if p.code == 3 {
        return true;
    }
    let message = p.message.to_ascii_lowercase();
    CONTRACT_FAILURES.iter().any(|m| message.contains(m))
}

/// `text` with every `scheme://…` run replaced by `<url>`: reqwest's errors name the URL,
/// which may carry an API key in its path or query.
pub fn scrub_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // Back over the scheme: ASCII bytes, so `start` stays on a char boundary.
        let bytes = rest.as_bytes();
        let mut start = at;
        while start > 0
            && (bytes[start - 1].is_ascii_alphanumeric() || b"+-.".contains(&bytes[start - 1]))
        {
            start -= 1;
        }
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '(' | '"' | '\'' | '<' | '>'))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        out.push_str("<url>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_urls_from_error_text() {
        assert_eq!(
            scrub_urls(
                "error sending request for url (https://eth.example/v3/KEY?x=1): connection refused"
            ),
            "error sending request for url (<url>): connection refused"
        );
        assert_eq!(
            scrub_urls("http://a/KEY and wss://b/KEY2"),
            "<url> and <url>"
        );
        assert_eq!(scrub_urls("no url here"), "no url here");
        assert_eq!(scrub_urls("odd :// alone"), "odd <url> alone");
        assert_eq!(scrub_urls("é://ü/KEY ö"), "é<url> ö");
    }

    #[test]
    fn tells_contract_failures_from_endpoint_failures() {
        // The payload type is inferred: alloy's `json-rpc` re-export is not enabled.
        let resp = |code: i64, message: &str| {
            let payload = serde_json::json!({ "code": code, "message": message });
            TransportError::ErrorResp(serde_json::from_value(payload).unwrap())
        };
        assert!(is_contract_failure(&resp(3, "execution reverted")));
        assert!(is_contract_failure(&resp(-32000, "execution reverted")));
        assert!(is_contract_failure(&resp(
            -32603,
            "EVM error InvalidFEOpcode"
        )));
        assert!(is_contract_failure(&resp(
            -32000,
            "invalid opcode: INVALID"
        )));
        assert!(!is_contract_failure(&resp(-32005, "rate limit exceeded")));
        assert!(!is_contract_failure(&resp(-32000, "header not found")));
        assert!(!is_contract_failure(&TransportError::local_usage_str(
            "revert"
        )));
    }
}
