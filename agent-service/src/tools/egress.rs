//! The SSRF guard for every outbound tool HTTP request.
//!
//! A destination is refused unless the allowlist (`EGRESS_ALLOWLIST`) names it when it is
//! loopback, private, link-local, cloud metadata, unspecified, shared (CGNAT), multicast,
//! broadcast or otherwise reserved, in any of its spellings (IPv4-mapped, IPv4-compatible,
//! NAT64 and 6to4 forms of IPv6 are judged by the IPv4 address they embed). Only `http` and
//! `https` are ever allowed.
//!
//! The check runs twice: [`Egress::check_url`] judges the URL up front (scheme, IP literals,
//! well-known internal names), and the client's DNS resolver judges every address a name
//! resolves to before reqwest may connect, so there is no window between "checked" and
//! "connected" for DNS rebinding. Redirects are re-checked hop by hop. Proxies from the
//! environment are ignored, so the connection always goes to the checked address.
//!
//! reqwest does not ask the resolver about IP-literal hosts, so requests must go through
//! [`Egress::send`] (which runs [`Egress::check_url`] first) rather than straight through
//! the [`Egress::client`].

use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// How many redirects a tool request may follow (each hop is re-checked).
const MAX_REDIRECTS: usize = 5;
/// Connecting must not eat a tool's whole time budget.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves a host name to addresses. The default is the system resolver; tests inject
/// their own to map names to any address.
#[async_trait]
pub trait Lookup: Send + Sync + 'static {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The system resolver, through `tokio::net::lookup_host`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

#[async_trait]
impl Lookup for SystemLookup {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|a| a.ip())
            .collect())
    }
}

/// A refused destination; the message names the host, why, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(String);

impl Denied {
    fn address(host: &str, ip: IpAddr, why: &str) -> Self {
        let for_host = if host == ip.to_string() {
            String::new()
        } else {
            format!(" for {host}")
        };
        Self(format!(
            "refusing {ip} ({why}){for_host}; add it to EGRESS_ALLOWLIST to allow"
        ))
    }

    fn name(host: &str, why: &str) -> Self {
        Self(format!(
            "refusing {host} ({why}); add it to EGRESS_ALLOWLIST to allow"
        ))
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

/// Why sending a request through the guard failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("the request timed out")]
    Timeout,
    /// The destination could not be reached (DNS failure, connection refused, TLS).
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Failed(String),
}

impl SendError {
    /// Classifies a reqwest error, finding a refusal by the guard anywhere in its chain.
    pub fn from_reqwest(err: &reqwest::Error) -> Self {
        let mut source: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(e) = source {
            if let Some(denied) = e.downcast_ref::<Denied>() {
                return Self::Denied(denied.clone());
            }
            source = e.source();
        }
        if err.is_timeout() {
            Self::Timeout
        } else if err.is_connect() {
            Self::Unreachable(describe(err))
        } else {
            Self::Failed(describe(err))
        }
    }
}

/// An error with its causes, `outer: inner: root`, without repeating reqwest's URL noise.
fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if parts.last() != Some(&s) {
            parts.push(s);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// The parsed `EGRESS_ALLOWLIST`: names, `*.suffix` wildcards, addresses and CIDRs.
#[derive(Debug, Clone, Default)]
struct Allowlist {
    names: Vec<String>,
    /// Stored with the leading dot: `*.corp.example` → `.corp.example`.
    suffixes: Vec<String>,
    nets: Vec<IpNet>,
}

impl Allowlist {
    fn parse(entries: &[String]) -> Result<Self, String> {
        let mut list = Self::default();
        for raw in entries {
            let entry = raw.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            let bad = || {
                format!(
                    "EGRESS_ALLOWLIST entry {raw:?} is not a host name, *.suffix wildcard, IP \
                     address or CIDR (ports and schemes are not part of an entry)"
                )
            };
            if let Some(suffix) = entry.strip_prefix("*.") {
                let suffix = normalize_name(suffix);
                if !is_host_name(&suffix) {
                    return Err(bad());
                }
                list.suffixes.push(format!(".{suffix}"));
            } else if let Ok(net) = entry.parse::<IpNet>() {
                list.nets.push(net.trunc());
            } else if let Ok(ip) = entry
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                list.nets.push(IpNet::from(ip));
            } else {
                let name = normalize_name(&entry);
                if !is_host_name(&name) {
                    return Err(bad());
                }
                list.names.push(name);
            }
        }
        Ok(list)
    }

    fn allows_name(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
            || self.suffixes.iter().any(|s| name.ends_with(s.as_str()))
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }
}

fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Names that point inside the host or at a cloud metadata service, whatever DNS says.
fn special_name(name: &str) -> Option<&'static str> {
    const LOOPBACK: &[&str] = &[
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
    ];
    const METADATA: &[&str] = &[
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    ];
    if LOOPBACK.contains(&name) || name.ends_with(".localhost") {
        Some("loopback name")
    } else if METADATA.contains(&name) {
        Some("cloud metadata endpoint")
    } else {
        None
    }
}

/// Special-purpose ranges, most specific first (metadata addresses sit inside
/// link-local and unique-local ranges and get the more useful label).
static SPECIAL_RANGES: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    [
        ("169.254.169.254/32", "cloud metadata endpoint"),
        ("169.254.170.2/32", "cloud metadata endpoint"),
        ("100.100.100.200/32", "cloud metadata endpoint"),
        ("fd00:ec2::254/128", "cloud metadata endpoint"),
        ("0.0.0.0/8", "unspecified address"),
        ("127.0.0.0/8", "loopback address"),
        ("10.0.0.0/8", "private address"),
        ("172.16.0.0/12", "private address"),
        ("192.168.0.0/16", "private address"),
        ("169.254.0.0/16", "link-local address"),
        ("100.64.0.0/10", "shared (CGNAT) address"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation address"),
        ("198.51.100.0/24", "documentation address"),
        ("203.0.113.0/24", "documentation address"),
        ("198.18.0.0/15", "benchmarking address"),
        ("224.0.0.0/4", "multicast address"),
        ("255.255.255.255/32", "broadcast address"),
        ("240.0.0.0/4", "reserved address"),
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        ("64:ff9b:1::/48", "private address"),
        ("100::/64", "discard-only address"),
        ("2001::/32", "Teredo tunnel address"),
        ("2001:db8::/32", "documentation address"),
        ("fc00::/7", "private address"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address"),
        ("ff00::/8", "multicast address"),
    ]
    .into_iter()
    .filter_map(|(net, why)| net.parse::<IpNet>().ok().map(|n| (n, why)))
    .collect()
});

/// Why an address may not be reached without an allowlist entry; `None` for a public
/// unicast address.
pub fn classify(ip: IpAddr) -> Option<String> {
    if let IpAddr::V6(v6) = ip
        && let Some((v4, form)) = embedded_v4(v6)
    {
        return classify(IpAddr::V4(v4)).map(|why| format!("{why} in {form} form"));
    }
    SPECIAL_RANGES
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, why)| (*why).to_string())
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms that route to it.
fn embedded_v4(ip: Ipv6Addr) -> Option<(Ipv4Addr, &'static str)> {
    let s = ip.segments();
    let o = ip.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some((tail, "IPv4-mapped")),
        // `::` and `::1` are judged as themselves.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => Some((tail, "IPv4-compatible")),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some((tail, "NAT64")),
        [0x2002, ..] => Some((Ipv4Addr::new(o[2], o[3], o[4], o[5]), "6to4")),
        _ => None,
    }
}

/// The allowlist plus the rules; shared by the up-front check, the resolver and the
/// redirect policy.
#[derive(Debug)]
struct Policy {
    allow: Allowlist,
}

impl Policy {
    fn check_url(&self, url: &Url) -> Result<(), Denied> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Denied(format!(
                "refusing a {}: URL; only http and https are allowed",
                url.scheme()
            )));
        }
        match url.host() {
            None => Err(Denied(format!("refusing {url}: it has no host"))),
            Some(Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(&ip.to_string(), IpAddr::V6(ip)),
            Some(Host::Domain(name)) => self.check_name(name),
        }
    }

    fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Denied> {
        if self.allow.allows_ip(ip) {
            return Ok(());
        }
        match classify(ip) {
            Some(why) => Err(Denied::address(host, ip, &why)),
            None => Ok(()),
        }
    }

    fn check_name(&self, name: &str) -> Result<(), Denied> {
        let name = normalize_name(name);
        if self.allow.allows_name(&name) {
            return Ok(());
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            return self.check_ip(&name, ip);
        }
        match special_name(&name) {
            Some(why) => Err(Denied::name(&name, why)),
            None => Ok(()),
        }
    }

    /// Every address a name resolved to must pass, unless the name itself is allowlisted.
    fn check_resolved(&self, name: &str, ips: &[IpAddr]) -> Result<(), Denied> {
        let name = normalize_name(name);
        if self.allow.allows_name(&name) {
            return Ok(());
        }
        ips.iter().try_for_each(|ip| self.check_ip(&name, *ip))
    }
}

/// reqwest's resolver hook: resolves, then refuses unless every address passes the policy.
struct GuardedResolver {
    policy: Arc<Policy>,
    lookup: Arc<dyn Lookup>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let lookup = Arc::clone(&self.lookup);
        let host = name.as_str().to_string();
        Box::pin(async move {
            policy.check_name(&host)?;
            let ips = lookup.lookup(&host).await?;
            if ips.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host} has no addresses"),
                )
                .into());
            }
            policy.check_resolved(&host, &ips)?;
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The guarded outbound HTTP client for tools. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Egress {
    policy: Arc<Policy>,
    client: reqwest::Client,
}

impl Egress {
    /// A guard over `allowlist` entries (host names, `*.suffix` wildcards, IP addresses,
    /// CIDRs) that resolves names with the system resolver.
    pub fn new(allowlist: &[String]) -> Result<Egress, String> {
        Self::with_lookup(allowlist, Arc::new(SystemLookup))
    }

    /// The same, resolving names with `lookup`.
    pub fn with_lookup(allowlist: &[String], lookup: Arc<dyn Lookup>) -> Result<Egress, String> {
        let policy = Arc::new(Policy {
            allow: Allowlist::parse(allowlist)?,
        });
        let redirect_policy = Arc::clone(&policy);
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&policy),
                lookup,
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    let message = format!("stopped after {MAX_REDIRECTS} redirects");
                    return attempt.error(message);
                }
                match redirect_policy.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(denied) => attempt.error(denied),
                }
            }))
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!(
                "flightdeck-agent-service/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| format!("cannot build the outbound HTTP client: {}", describe(&e)))?;
        Ok(Egress { policy, client })
    }

    /// The client for outbound tool HTTP: names are checked after resolution and redirects
    /// hop by hop. Send its requests with [`Egress::send`], which also checks IP literals.
    pub fn client(&self) -> reqwest::Client {
        self.client.clone()
    }

    /// Judges a URL before any connection: scheme, IP-literal host, well-known names.
    pub fn check_url(&self, url: &Url) -> Result<(), Denied> {
        self.policy.check_url(url)
    }

    /// Checks the request's URL, then sends it with the guarded client.
    pub async fn send(&self, request: reqwest::Request) -> Result<reqwest::Response, SendError> {
        self.check_url(request.url())?;
        self.client
            .execute(request)
            .await
            .map_err(|e| SendError::from_reqwest(&e))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::Router;
    use axum::response::Redirect;
    use axum::routing::get;

    use super::*;

    /// A resolver over a fixed table, as DNS would answer it.
    struct FakeDns(HashMap<&'static str, Vec<IpAddr>>);

    #[async_trait]
    impl Lookup for FakeDns {
        async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
            self.0.get(host).cloned().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no such host {host}"))
            })
        }
    }

    fn fake_dns() -> Arc<dyn Lookup> {
        let table = [
            ("internal.example.test", "10.0.0.5"),
            ("metadata.example.test", "169.254.169.254"),
            ("mapped.example.test", "::ffff:192.168.1.1"),
            ("public.example.test", "93.184.215.14"),
            ("api.example.test", "127.0.0.1"),
            ("svc.corp.test", "127.0.0.1"),
        ];
        Arc::new(FakeDns(
            table
                .into_iter()
                .filter_map(|(n, ip)| ip.parse().ok().map(|ip| (n, vec![ip])))
                .collect(),
        ))
    }

    fn guard(allow: &[&str]) -> Egress {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        Egress::with_lookup(&allow, fake_dns()).expect("valid allowlist")
    }

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    /// Serves `router` on 127.0.0.1 and returns its base URL.
    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    async fn get_via(egress: &Egress, u: &str) -> Result<reqwest::Response, SendError> {
        let request = egress.client().get(u).build().expect("request");
        egress.send(request).await
    }

    #[test]
    fn special_addresses_and_names_are_refused_up_front() {
        let egress = guard(&[]);
        for (u, why) in [
            ("http://127.0.0.1/", "loopback address"),
            ("http://127.9.9.9:8080/x", "loopback address"),
            ("http://2130706433/", "loopback address"),
            ("http://0x7f.1/", "loopback address"),
            ("http://localhost/", "loopback name"),
            ("http://LOCALHOST./", "loopback name"),
            ("http://app.localhost/", "loopback name"),
            ("http://[::1]/", "loopback address"),
            ("http://10.1.2.3/", "private address"),
            ("http://172.16.0.1/", "private address"),
            ("http://192.168.0.10/", "private address"),
            ("http://[fd12::1]/", "private address"),
            (
                "http://169.254.169.254/latest/meta-data/",
                "cloud metadata endpoint",
            ),
            ("http://[fd00:ec2::254]/", "cloud metadata endpoint"),
            (
                "http://metadata.google.internal/computeMetadata/v1/",
                "cloud metadata endpoint",
            ),
            ("http://169.254.1.1/", "link-local address"),
            ("http://[fe80::1]/", "link-local address"),
            ("http://0.0.0.0/", "unspecified address"),
            ("http://[::]/", "unspecified address"),
            ("http://100.64.0.1/", "shared (CGNAT) address"),
            ("http://224.0.0.1/", "multicast address"),
            ("http://[ff02::1]/", "multicast address"),
            ("http://255.255.255.255/", "broadcast address"),
            (
                "http://[::ffff:127.0.0.1]/",
                "loopback address in IPv4-mapped form",
            ),
            (
                "http://[::ffff:169.254.169.254]/",
                "cloud metadata endpoint in IPv4-mapped form",
            ),
            (
                "http://[::10.0.0.1]/",
                "private address in IPv4-compatible form",
            ),
            ("http://[64:ff9b::a00:1]/", "private address in NAT64 form"),
            ("http://[2002:7f00:1::]/", "loopback address in 6to4 form"),
        ] {
            let err = egress.check_url(&url(u)).expect_err(u);
            assert!(err.message().contains(why), "{u}: {err}");
            assert!(err.message().contains("EGRESS_ALLOWLIST"), "{u}: {err}");
        }
    }

    #[test]
    fn only_http_and_https_are_allowed() {
        let egress = guard(&["*.example.com", "0.0.0.0/0"]);
        for u in [
            "file:///etc/passwd",
            "ftp://example.com/",
            "gopher://example.com/",
            "data:text/plain,x",
        ] {
            let err = egress.check_url(&url(u)).expect_err(u);
            assert!(err.message().contains("only http and https"), "{u}: {err}");
        }
        assert!(egress.check_url(&url("https://api.example.com/v1")).is_ok());
    }

    #[test]
    fn public_destinations_pass_and_allowlist_entries_open_special_ones() {
        let open = guard(&[]);
        for u in [
            "https://93.184.215.14/",
            "https://[2606:4700::1111]/",
            "https://example.com/",
            "http://[::ffff:8.8.8.8]/",
        ] {
            assert!(open.check_url(&url(u)).is_ok(), "{u}");
        }
        let egress = guard(&[
            "127.0.0.1",
            "10.0.0.0/8",
            "[fd12::1]",
            "*.corp.test",
            "Localhost",
        ]);
        for u in [
            "http://127.0.0.1:9000/",
            "http://[::ffff:127.0.0.1]/",
            "http://10.200.0.1/",
            "http://[fd12::1]/",
            "http://svc.corp.test/",
            "http://localhost/",
        ] {
            assert!(egress.check_url(&url(u)).is_ok(), "{u}");
        }
        for u in [
            "http://127.0.0.2/",
            "http://192.168.1.1/",
            "http://corp.test.localhost/",
        ] {
            assert!(egress.check_url(&url(u)).is_err(), "{u}");
        }
    }

    #[test]
    fn malformed_allowlist_entries_are_rejected() {
        for bad in [
            "http://example.com",
            "example.com:443",
            "*.",
            "a b",
            "10.0.0.0/33",
        ] {
            let err = Egress::new(&[bad.to_string()]).expect_err(bad);
            assert!(
                err.contains("EGRESS_ALLOWLIST") && err.contains(bad),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn names_resolving_to_private_or_metadata_addresses_are_refused_after_dns() {
        let egress = guard(&[]);
        for (host, needle) in [
            (
                "internal.example.test",
                "refusing 10.0.0.5 (private address) for internal.example.test",
            ),
            (
                "metadata.example.test",
                "refusing 169.254.169.254 (cloud metadata endpoint) for metadata.example.test",
            ),
            ("mapped.example.test", "private address in IPv4-mapped form"),
        ] {
            // The up-front check cannot know; the resolver must.
            let u = format!("http://{host}/");
            assert!(egress.check_url(&url(&u)).is_ok());
            match get_via(&egress, &u).await {
                Err(SendError::Denied(d)) => assert!(d.message().contains(needle), "{d}"),
                other => panic!("{host}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn the_raw_client_is_guarded_after_dns_too() {
        let egress = guard(&[]);
        let err = egress
            .client()
            .get("http://internal.example.test/")
            .send()
            .await
            .expect_err("refused");
        assert!(
            matches!(SendError::from_reqwest(&err), SendError::Denied(_)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn allowlisted_destinations_are_reached() {
        let base = serve(Router::new().route("/ok", get(|| async { "fine" }))).await;
        let port = url(&base).port().expect("port");

        let refused = guard(&[]);
        assert!(matches!(
            get_via(&refused, &format!("{base}/ok")).await,
            Err(SendError::Denied(_))
        ));

        let by_ip = guard(&["127.0.0.1"]);
        let resp = get_via(&by_ip, &format!("{base}/ok"))
            .await
            .expect("allowed");
        assert_eq!(resp.text().await.expect("body"), "fine");

        // A name that resolves to loopback is reachable when the name is allowlisted...
        let by_name = guard(&["api.example.test"]);
        let resp = get_via(&by_name, &format!("http://api.example.test:{port}/ok"))
            .await
            .expect("allowed");
        assert!(resp.status().is_success());
        // ...or when a wildcard covers it, but not otherwise.
        let by_suffix = guard(&["*.corp.test"]);
        assert!(
            get_via(&by_suffix, &format!("http://svc.corp.test:{port}/ok"))
                .await
                .is_ok()
        );
        assert!(matches!(
            get_via(&by_suffix, &format!("http://api.example.test:{port}/ok")).await,
            Err(SendError::Denied(_))
        ));
    }

    #[tokio::test]
    async fn redirects_are_rechecked_at_every_hop() {
        let router = Router::new()
            .route(
                "/to-metadata",
                get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
            )
            .route(
                "/to-internal",
                get(|| async { Redirect::temporary("http://internal.example.test/") }),
            )
            .route(
                "/to-file",
                get(|| async { Redirect::temporary("file:///etc/passwd") }),
            )
            .route("/to-ok", get(|| async { Redirect::temporary("/ok") }))
            .route("/ok", get(|| async { "fine" }));
        let base = serve(router).await;
        let egress = guard(&["127.0.0.1"]);
        for path in ["/to-metadata", "/to-internal"] {
            match get_via(&egress, &format!("{base}{path}")).await {
                Err(SendError::Denied(_)) => {}
                other => panic!("{path}: expected a refusal, got {other:?}"),
            }
        }
        // reqwest hands back a redirect to a non-http(s) URL without following it.
        match get_via(&egress, &format!("{base}/to-file")).await {
            Ok(resp) => assert!(resp.status().is_redirection(), "{resp:?}"),
            Err(e) => assert!(!matches!(e, SendError::Unreachable(_)), "{e:?}"),
        }
        let resp = get_via(&egress, &format!("{base}/to-ok"))
            .await
            .expect("same-host redirect");
        assert_eq!(resp.text().await.expect("body"), "fine");
    }

    #[tokio::test]
    async fn unreachable_hosts_are_reported_as_such() {
        let egress = guard(&["127.0.0.1"]);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let err = get_via(&egress, &format!("http://127.0.0.1:{port}/"))
            .await
            .expect_err("closed port");
        assert!(matches!(err, SendError::Unreachable(_)), "{err:?}");
    }
}
