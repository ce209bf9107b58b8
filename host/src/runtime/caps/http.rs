//! Outbound `wasi:http`: every request is checked against the manifest's allowed
//! destinations, then its host is resolved and every address checked: private, loopback,
//! link-local and other non-public addresses are refused unless the manifest names that
//! address literally. The request is then sent to the checked address (`outbound.rs`), so a
//! second DNS answer cannot redirect it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiHttpHooks};

/// The schemes of `capabilities.http`, with their default ports.
pub const HTTP_SCHEMES: &[(&str, u16)] = &[("http", 80), ("https", 443)];

/// One allowed destination: `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRule {
    scheme: String,
    host: HostPattern,
    /// `None` means any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    /// A literal IP address (which may then be private).
    Ip(IpAddr),
    /// An exact host name.
    Name(String),
    /// `*.example.com`: any name ending in `.example.com`.
    Suffix(String),
}

impl HostRule {
    /// Parses an HTTP destination `http(s)://host[:port]` ([`HTTP_SCHEMES`]).
    pub fn parse(rule: &str) -> Result<Self, String> {
        Self::parse_with(rule, HTTP_SCHEMES)
    }

    /// Parses `scheme://host[:port]` for one of `schemes` (name, default port); host may be
    /// `*.domain`, an IP (IPv6 in brackets), port may be `*`. Without a port, the scheme's
    /// default port is the only one allowed.
    pub fn parse_with(rule: &str, schemes: &[(&str, u16)]) -> Result<Self, String> {
        let (scheme, rest) = rule.split_once("://").ok_or_else(|| {
            format!("`{rule}` must look like `{}://host` or `{0}://host:port`", schemes[0].0)
        })?;
        let scheme = scheme.to_ascii_lowercase();
        let Some(&(_, default_port)) = schemes.iter().find(|(name, _)| *name == scheme) else {
            let names: Vec<&str> = schemes.iter().map(|(name, _)| *name).collect();
            return Err(format!("`{rule}`: scheme must be {}", names.join(" or ")));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(format!("`{rule}`: give only scheme, host and port, no path or user"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| format!("`{rule}`: bad host or port"))?;
        let port = match port {
            None => Some(default_port),
            Some("*") => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| format!("`{rule}`: bad port `{p}`"))?),
        };
        let host = if let Ok(ip) = host.parse::<IpAddr>() {
            HostPattern::Ip(ip)
        } else if let Some(suffix) = host.strip_prefix("*.") {
            HostPattern::Suffix(format!(".{}", suffix.to_ascii_lowercase()))
        } else if !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            HostPattern::Name(host.to_ascii_lowercase())
        } else {
            return Err(format!("`{rule}`: bad host `{host}`"));
        };
        Ok(HostRule { scheme, host, port })
    }

    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme != scheme || self.port.is_some_and(|p| p != port) {
            return false;
        }
        match &self.host {
            HostPattern::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
            HostPattern::Name(n) => n == host,
            HostPattern::Suffix(s) => host.ends_with(s.as_str()),
        }
    }

    fn names_ip(&self, scheme: &str, ip: IpAddr, port: u16) -> bool {
        self.scheme == scheme && self.port.is_none_or(|p| p == port) && self.host == HostPattern::Ip(ip)
    }
}

/// `host[:port]` with IPv6 literals in brackets.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p))),
        Some(_) => None,
        None => Some((s, None)),
    }
}

/// Whether `ip` is on the public internet. Everything else (private, loopback,
/// link-local, shared, unspecified, multicast, documentation ranges) needs a literal grant.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || s[0] == 0x2002 // 6to4: embeds an IPv4 address
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: embeds an IPv4 address
                || s[..6] == [0; 6]) // IPv4-compatible ::a.b.c.d
        }
    }
}

/// The per-call outbound HTTP policy of one plugin, installed as the store's
/// [`WasiHttpHooks`].
pub struct OutboundPolicy {
    plugin: Arc<str>,
    rules: Arc<[HostRule]>,
    tls: Arc<rustls::ClientConfig>,
    /// Nanoseconds this call spent waiting for outbound responses; the CPU deadline does
    /// not charge them to the plugin.
    pub waited_ns: Arc<AtomicU64>,
}

impl OutboundPolicy {
    /// A policy for `plugin` allowing `rules`, with `tls` for https.
    pub fn new(plugin: Arc<str>, rules: Arc<[HostRule]>, tls: Arc<rustls::ClientConfig>) -> Self {
        OutboundPolicy { plugin, rules, tls, waited_ns: Arc::default() }
    }

    /// Checks `uri` and resolves its host: the address to connect to, or why not.
    pub async fn vet(rules: &[HostRule], uri: &http::Uri) -> Result<SocketAddr, String> {
        Self::vet_host(rules, uri).await.map(|(addr, _)| addr)
    }

    /// [`Self::vet`], also returning the host name (lower-case, no brackets).
    async fn vet_host(rules: &[HostRule], uri: &http::Uri) -> Result<(SocketAddr, String), String> {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().ok_or("no host")?;
        let port = uri.port_u16().unwrap_or(if scheme == "http" { 80 } else { 443 });
        vet_destination(rules, "capabilities.http", &scheme, host, port).await
    }
}

/// Checks `scheme://host:port` against `rules` (the grant `field`), then resolves `host` and
/// checks every address: the address to connect to and the host name (lower-case, no
/// brackets), or why not.
pub async fn vet_destination(
    rules: &[HostRule],
    field: &str,
    scheme: &str,
    host: &str,
    port: u16,
) -> Result<(SocketAddr, String), String> {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    if !rules.iter().any(|r| r.matches(scheme, &host, port)) {
        return Err(format!("{scheme}://{host}:{port} is not in {field}"));
    }
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect(),
    };
    let first = *addrs.first().ok_or_else(|| format!("{host} resolves to no address"))?;
    for addr in &addrs {
        let ip = addr.ip();
        if !is_public(ip) && !rules.iter().any(|r| r.names_ip(scheme, ip, port)) {
            return Err(format!(
                "{host} resolves to non-public address {ip}, which {field} does not name literally"
            ));
        }
    }
    Ok((first, host))
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<(), HttpError>> + Send>,
)>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        let rules = self.rules.clone();
        let plugin = self.plugin.clone();
        let waited = self.waited_ns.clone();
        let tls = self.tls.clone();
        Box::new(async move {
            let started = Instant::now();
            let result = async {
                let (addr, host) = match Self::vet_host(&rules, request.uri()).await {
                    Ok(checked) => checked,
                    Err(reason) => {
                        tracing::warn!(plugin = %plugin, uri = %request.uri(), %reason, "outbound HTTP denied");
                        return Err(HttpError::HttpRequestDenied);
                    }
                };
                tracing::debug!(plugin = %plugin, uri = %request.uri(), %addr, "outbound HTTP");
                let tls = (request.uri().scheme_str() == Some("https")).then_some(tls);
                super::outbound::send(request, addr, &host, tls, options).await
            }
            .await;
            waited.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[&str]) -> Vec<HostRule> {
        list.iter().map(|r| HostRule::parse(r).unwrap()).collect()
    }

    #[test]
    fn parses_rules() {
        assert!(HostRule::parse("https://api.telegram.org").is_ok());
        assert!(HostRule::parse("http://127.0.0.1:*").is_ok());
        assert!(HostRule::parse("http://[::1]:8080").is_ok());
        assert!(HostRule::parse("https://*.example.com").is_ok());
        for bad in ["api.telegram.org", "ftp://x", "https://x/path", "https://x:port", "https://a b"] {
            assert!(HostRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_scheme_host_port_and_wildcards() {
        let r = rules(&["https://api.example.com", "https://*.cdn.net", "http://127.0.0.1:*"]);
        let m = |s: &str, h: &str, p: u16| r.iter().any(|r| r.matches(s, h, p));
        assert!(m("https", "api.example.com", 443));
        assert!(!m("https", "api.example.com", 8443), "default port only");
        assert!(!m("http", "api.example.com", 80), "scheme must match");
        assert!(m("https", "a.b.cdn.net", 443));
        assert!(!m("https", "cdn.net", 443), "wildcard needs a subdomain");
        assert!(!m("https", "evilcdn.net", 443));
        assert!(m("http", "127.0.0.1", 9999));
        assert!(!m("http", "127.0.0.2", 9999));
    }

    #[test]
    fn non_public_ranges() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn vet_denies_names_resolving_privately_unless_the_ip_is_named() {
        let uri: http::Uri = "http://localhost:8080/x".parse().unwrap();
        let err = OutboundPolicy::vet(&rules(&["http://localhost:8080"]), &uri).await.unwrap_err();
        assert!(err.contains("non-public"), "{err}");
        let ok = OutboundPolicy::vet(&rules(&["http://localhost:8080", "http://127.0.0.1:8080"]), &uri).await;
        // localhost may resolve to ::1 first on some machines; name both to be sure.
        let both = rules(&["http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:8080"]);
        assert!(ok.is_ok() || OutboundPolicy::vet(&both, &uri).await.is_ok());
        let denied = OutboundPolicy::vet(
            &rules(&["http://127.0.0.1:8080"]),
            &"http://127.0.0.1:8081/".parse().unwrap(),
        )
        .await;
        assert!(denied.unwrap_err().contains("not in capabilities.http"));
    }
}
