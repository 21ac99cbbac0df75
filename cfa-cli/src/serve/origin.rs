//! Who may talk to `cfa serve` from a browser: the `Host` a request names must be a
//! loopback name, the server's own address or an allowed name (so a DNS-rebound page
//! cannot read the server), browser requests from another site are refused (so a web
//! page cannot drive it), and bodies must be declared `application/json` (so the
//! "simple" cross-site POSTs a page can send without asking — text/plain, forms,
//! multipart — never reach a handler).

use axum::http::{HeaderMap, Method, header};
use std::net::IpAddr;

/// The address of the socket a request arrived on, put in every request's extensions
/// by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub IpAddr);

/// The host and origin rules of one server.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// Accept any `Host`.
    pub any_host: bool,
    /// Extra accepted host names (lower case, no port, no trailing dot).
    pub names: Vec<String>,
    /// The address the server is bound to.
    pub bound: IpAddr,
    /// Origins accepted from browsers besides the server's own (`*`: any).
    pub origins: Vec<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The `Host` (or absolute request target) names another server.
    Host(String),
    /// A browser request from another site.
    CrossSite(String),
    /// A body that is not declared as JSON.
    MediaType(String),
}

/// Longest slice of a client-chosen value echoed in an error message.
const ECHO: usize = 80;

fn echo(s: &str) -> String {
    s.chars().take(ECHO).collect()
}

/// `name` lower-cased, without a trailing dot.
fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// [`normalise`], borrowing `name` when lower-casing changes nothing.
fn normalise_borrowed(name: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = name.trim().trim_end_matches('.');
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(trimmed)
    }
}

/// The host part of an authority (`name`, `name:port`, `1.2.3.4:port`, `[::1]:port`),
/// `None` when it is not one.
fn host_part(authority: &str) -> Option<&str> {
    let a = authority.trim();
    if a.is_empty() || a.contains(['@', '/', '\\', ' ', '\t', '?', '#']) {
        return None;
    }
    if let Some(rest) = a.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || valid_port(after.strip_prefix(':')?)) {
            return None;
        }
        return Some(inside);
    }
    match a.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') => valid_port(port).then_some(h),
        Some(_) => None,
        None => Some(a),
    }
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

impl HostPolicy {
    /// Whether the host of `authority` is one this server answers to (ignoring
    /// `--allow-any-host`).
    fn names_us(&self, authority: &str, local: Option<IpAddr>) -> bool {
        let Some(host) = host_part(authority) else {
            return false;
        };
        // Lower-cased only when it has an upper-case letter (a copy per request fewer).
        let host = normalise_borrowed(host);
        if host == "localhost" || self.names.iter().any(|n| *n == *host) {
            return true;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                is_loopback(ip)
                    || (!self.bound.is_unspecified() && ip == self.bound)
                    || local.is_some_and(|l| l == ip)
            }
            Err(_) => false,
        }
    }

    /// Checks the `Host` header and the request target's authority.
    pub fn check_host(
        &self,
        headers: &HeaderMap,
        target_authority: Option<&str>,
        local: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        if self.any_host {
            return Ok(());
        }
        // Browsers always send Host; a request without one cannot come from a page.
        let host = match headers.get(header::HOST) {
            None => None,
            Some(v) => match v.to_str() {
                Ok(s) => Some(s),
                Err(_) => return Err(Refusal::Host("(not ASCII)".to_owned())),
            },
        };
        for a in [host, target_authority].into_iter().flatten() {
            if !self.names_us(a, local) {
                return Err(Refusal::Host(echo(a)));
            }
        }
        Ok(())
    }

    /// Refuses browser requests from another site: an `Origin` that is neither this
    /// server (by the host rules or the request's own `Host`) nor an allowed origin,
    /// and `Sec-Fetch-Site: cross-site` without an allowed origin.
    pub fn check_origin(&self, headers: &HeaderMap, local: Option<IpAddr>) -> Result<(), Refusal> {
        if self.origins.iter().any(|o| o == "*") {
            return Ok(());
        }
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .map(|v| v.to_str().map(str::trim).unwrap_or("(not ASCII)"))
        };
        let origin = text(header::ORIGIN);
        let explicitly_allowed = origin.is_some_and(|o| {
            let o = normalise(o);
            self.origins.contains(&o)
        });
        if let Some(o) = origin
            && !explicitly_allowed
        {
            let authority = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"));
            let same = authority.is_some_and(|a| {
                self.names_us(a, local)
                    || text(header::HOST).is_some_and(|h| h.eq_ignore_ascii_case(a))
            });
            if !same {
                return Err(Refusal::CrossSite(format!("Origin: {}", echo(o))));
            }
        }
        if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
            && site.eq_ignore_ascii_case("cross-site")
            && !explicitly_allowed
        {
            return Err(Refusal::CrossSite("Sec-Fetch-Site: cross-site".to_owned()));
        }
        Ok(())
    }
}

/// Refuses a request that carries (or may carry) a body not declared as JSON: POST,
/// PUT and PATCH always need `Content-Type: application/json` (parameters such as
/// `charset` allowed); other methods only when they send a body.
pub fn check_content_type(method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    let always = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    let exempt = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if !(always || (has_body && !exempt)) {
        return Ok(());
    }
    let declared = headers.get(header::CONTENT_TYPE);
    let ok = declared
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if ok {
        return Ok(());
    }
    Err(Refusal::MediaType(match declared {
        None => "no Content-Type".to_owned(),
        Some(v) => format!("Content-Type {}", echo(v.to_str().unwrap_or("(not ASCII)"))),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;
    use std::net::Ipv4Addr;

    fn policy() -> HostPolicy {
        HostPolicy {
            any_host: false,
            names: vec!["cfa.internal".to_owned()],
            bound: IpAddr::V4(Ipv4Addr::LOCALHOST),
            origins: vec!["https://dash.example".to_owned()],
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hosts() {
        let p = policy();
        for ok in [
            "localhost",
            "LOCALHOST:8765",
            "localhost.",
            "127.0.0.1",
            "127.9.8.7:1",
            "[::1]:8765",
            "[::1]",
            "cfa.internal:80",
        ] {
            assert_eq!(
                p.check_host(&headers(&[("host", ok)]), None, None),
                Ok(()),
                "{ok}"
            );
        }
        for bad in [
            "evil.example",
            "evil.example:8765",
            "localhost.evil.example",
            "10.0.0.1",
            "[::2]:1",
            "user@localhost",
            "localhost:x",
            "",
        ] {
            assert!(
                p.check_host(&headers(&[("host", bad)]), None, None)
                    .is_err(),
                "{bad}"
            );
        }
        assert_eq!(p.check_host(&HeaderMap::new(), None, None), Ok(()));
        assert!(
            p.check_host(
                &headers(&[("host", "localhost")]),
                Some("evil.example"),
                None
            )
            .is_err()
        );
        let local = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 5)));
        assert_eq!(
            p.check_host(&headers(&[("host", "192.168.1.5:8765")]), None, local),
            Ok(())
        );
        let any = HostPolicy {
            any_host: true,
            ..policy()
        };
        assert_eq!(
            any.check_host(&headers(&[("host", "evil.example")]), None, None),
            Ok(())
        );
    }

    /// The borrowing normalisation is the owning one, and copies only a name with an
    /// upper-case letter.
    #[test]
    fn host_normalisation_borrows_only_what_needs_no_lower_casing() {
        for name in [
            "localhost",
            "LOCALHOST",
            "LocalHost.",
            "localhost..",
            " cfa.internal. ",
            "CFA.Internal.",
            "::FFFF:127.0.0.1",
            "fe80::1",
            "127.0.0.1",
            "\u{e9}t\u{c9}.example",
            ".",
            "",
        ] {
            let borrowed = normalise_borrowed(name);
            assert_eq!(*borrowed, *normalise(name), "{name:?}");
            assert_eq!(
                matches!(borrowed, std::borrow::Cow::Borrowed(_)),
                !name.bytes().any(|b| b.is_ascii_uppercase()),
                "{name:?}"
            );
        }
    }

    /// Upper case, trailing dots, ports and bracketed IPv6 addresses (upper-case hex
    /// too) in `Host`, against the loopback names, an allowed name and the bound address.
    #[test]
    fn host_edge_cases() {
        let p = policy();
        for ok in [
            "CFA.INTERNAL",
            "Cfa.Internal.:8765",
            "cfa.internal..",
            "LocalHost.:1",
            "[::FFFF:127.0.0.1]:8765",
            "[0:0:0:0:0:0:0:1]",
            "127.0.0.1.",
        ] {
            assert_eq!(
                p.check_host(&headers(&[("host", ok)]), None, None),
                Ok(()),
                "{ok}"
            );
        }
        for bad in [
            "CFA.INTERNAL.EVIL",
            "cfa.internal.:",
            "cfa.internal:123456",
            "[::1]:",
            "[::1]x",
            "[FE80::1]:80",
            "::1",
            "EVIL.EXAMPLE.",
            "localhost\u{130}",
        ] {
            assert!(
                p.check_host(&headers(&[("host", bad)]), None, None)
                    .is_err(),
                "{bad}"
            );
        }
        let upper = Some(IpAddr::V6("fe80::ab".parse().unwrap()));
        assert_eq!(
            p.check_host(&headers(&[("host", "[FE80::AB]:1")]), None, upper),
            Ok(())
        );
    }

    #[test]
    fn origins() {
        let p = policy();
        assert_eq!(p.check_origin(&HeaderMap::new(), None), Ok(()));
        assert_eq!(
            p.check_origin(&headers(&[("origin", "http://localhost:3000")]), None),
            Ok(())
        );
        assert_eq!(
            p.check_origin(&headers(&[("origin", "https://dash.example")]), None),
            Ok(())
        );
        assert!(
            p.check_origin(&headers(&[("origin", "https://evil.example")]), None)
                .is_err()
        );
        assert!(
            p.check_origin(&headers(&[("origin", "null")]), None)
                .is_err()
        );
        assert!(
            p.check_origin(&headers(&[("sec-fetch-site", "cross-site")]), None)
                .is_err()
        );
        assert_eq!(
            p.check_origin(&headers(&[("sec-fetch-site", "same-origin")]), None),
            Ok(())
        );
    }

    #[test]
    fn content_types() {
        let json = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert_eq!(check_content_type(&Method::POST, &json), Ok(()));
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
        ] {
            let h = headers(&[("content-type", bad)]);
            assert!(check_content_type(&Method::POST, &h).is_err(), "{bad}");
        }
        assert!(check_content_type(&Method::POST, &HeaderMap::new()).is_err());
        assert_eq!(check_content_type(&Method::GET, &HeaderMap::new()), Ok(()));
        let body = headers(&[("content-length", "3")]);
        assert!(check_content_type(&Method::DELETE, &body).is_err());
        assert_eq!(
            check_content_type(&Method::DELETE, &HeaderMap::new()),
            Ok(())
        );
    }
}
