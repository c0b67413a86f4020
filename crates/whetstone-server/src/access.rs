//! Who may talk to the server: the Host and Origin a request carries, and the session token.
//!
//! A loopback address alone does not keep other web pages out. A page elsewhere can rebind its
//! own host name to 127.0.0.1 and then call the API as a same-origin page (the Host check stops
//! that), and it can send simple cross-site requests (the Origin check and the token stop
//! those). The token also keeps out other users and programs of this machine that cannot read
//! what `whet serve` printed.

use super::{error_response, AppState};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Shortest token a user may choose: 16 characters.
pub const MIN_TOKEN_LEN: usize = 16;
/// Random bytes in a generated token: 256 bits, printed as 64 hex digits.
const TOKEN_BYTES: usize = 32;
pub const TOKEN_HEADER: &str = "x-whetstone-token";

/// The host names a request may address this server by.
pub struct Hosts {
    port: u16,
    names: Vec<String>,
    /// Bound to every interface, the server has no single address; IP literals cannot be
    /// rebound, so any of them is accepted.
    any_ip: bool,
}

impl Hosts {
    pub fn new(bound: SocketAddr, extra: &[String]) -> Hosts {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .map(str::to_string)
            .collect();
        names.push(host_text(bound.ip()));
        names.extend(extra.iter().map(|n| n.trim().to_ascii_lowercase()));
        Hosts {
            port: bound.port(),
            names,
            any_ip: bound.ip().is_unspecified(),
        }
    }

    /// Whether `authority` (`name:port`, as in a Host header) names this server.
    pub fn allows(&self, authority: &str) -> bool {
        let Some((name, port)) = split_authority(authority) else {
            return false;
        };
        // Browsers leave out the port only when it is the scheme's default.
        let port_ok = match port {
            Some(p) => p == self.port,
            None => self.port == 80,
        };
        let name = name.to_ascii_lowercase();
        port_ok
            && (self.names.contains(&name)
                || (self.any_ip && name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok()))
    }

    /// Whether `origin` (an Origin header) is a page served by this server.
    pub fn allows_origin(&self, origin: &str) -> bool {
        origin
            .strip_prefix("http://")
            .is_some_and(|authority| !authority.contains('/') && self.allows(authority))
    }
}

/// How an IP address appears in a URL.
pub fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `name:port` → (name, port); `[v6]:port` keeps its brackets; no port → `None`.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty() || authority.contains(['@', '/', ' ']) {
        return None;
    }
    match authority.rfind(':') {
        Some(i) if !authority.starts_with('[') || authority[..i].ends_with(']') => {
            let port = authority[i + 1..].parse().ok()?;
            Some((&authority[..i], Some(port)))
        }
        _ => Some((authority, None)),
    }
}

/// A fresh token from the operating system's random source.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Why a user-chosen token cannot be used, if it cannot.
pub fn check_chosen_token(token: &str) -> Result<(), String> {
    if token.chars().count() < MIN_TOKEN_LEN {
        return Err(format!(
            "the token must be at least {MIN_TOKEN_LEN} characters long; a short one can be guessed"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token may hold only visible ASCII characters (no spaces)".into());
    }
    Ok(())
}

/// Compares every byte whatever the first difference, so the time taken does not tell an
/// attacker how much of a guess was right.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

fn given_token(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.as_bytes();
        let scheme = b"bearer ";
        if value.len() > scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(value[scheme.len()..].trim_ascii());
        }
        return Some(b"");
    }
    headers.get(TOKEN_HEADER).map(|v| v.as_bytes().trim_ascii())
}

/// Host and Origin for every request, the token for the API.
pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let authority = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    if !authority.as_deref().is_some_and(|a| state.hosts.allows(a)) {
        return error_response(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            format!(
                "this server answers only to the address it printed, not to Host `{}`; open the \
                 link that `whet serve` printed (add a name with `--allow-host` if you reach it by \
                 another one)",
                authority.as_deref().unwrap_or("")
            ),
        );
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !state.hosts.allows_origin(origin) {
            return error_response(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                format!("requests from pages at `{origin}` are not accepted; only this server's own pages may call it"),
            );
        }
    }
    // In review mode each rater's invite token is checked by the API itself.
    if !state.review && request.uri().path().starts_with("/api/") {
        let refusal = match given_token(request.headers()) {
            None => Some("this server needs its session token: open the link that `whet serve` printed, or send `Authorization: Bearer TOKEN`"),
            Some(given) if !same_token(given, state.token.as_bytes()) => {
                Some("the session token does not match: open the link that `whet serve` printed most recently")
            }
            Some(_) => None,
        };
        if let Some(message) = refusal {
            let mut response = error_response(StatusCode::UNAUTHORIZED, "unauthorized", message.into());
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Hosts {
        Hosts::new("127.0.0.1:8787".parse().unwrap(), &[])
    }

    #[test]
    fn host_must_name_this_server_and_port() {
        let hosts = loopback();
        for ok in ["127.0.0.1:8787", "localhost:8787", "LOCALHOST:8787", "[::1]:8787"] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:8787",
            "127.0.0.1:8788",
            "127.0.0.1",
            "localhost.:8787",
            "user@127.0.0.1:8787",
            "10.0.0.2:8787",
            "",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
    }

    #[test]
    fn unspecified_bind_accepts_ip_literals_but_not_names() {
        let hosts = Hosts::new("0.0.0.0:9000".parse().unwrap(), &["box.lan".into()]);
        assert!(hosts.allows("192.168.1.20:9000"));
        assert!(hosts.allows("[fe80::1]:9000"));
        assert!(hosts.allows("box.lan:9000"));
        assert!(!hosts.allows("rebound.example:9000"));
    }

    #[test]
    fn origin_must_be_a_page_of_this_server() {
        let hosts = loopback();
        assert!(hosts.allows_origin("http://127.0.0.1:8787"));
        assert!(hosts.allows_origin("http://localhost:8787"));
        for bad in ["https://127.0.0.1:8787", "http://evil.example:8787", "null", "http://127.0.0.1:8787/x"] {
            assert!(!hosts.allows_origin(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!same_token(b"abcdefghijklmnoq", b"abcdefghijklmnop"));
        assert!(!same_token(b"abc", b"abcdefghijklmnop"));
        assert!(!same_token(b"", b"abcdefghijklmnop"));
    }

    #[test]
    fn generated_tokens_are_long_and_different() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(check_chosen_token(&a).is_ok());
        assert!(check_chosen_token("short").is_err());
        assert!(check_chosen_token("has a space in it!!").is_err());
    }
}
