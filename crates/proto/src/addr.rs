//! Addresses and durations as users type them: ports, hosts, `500ms`. Parsing only; the
//! name resolution is in [`crate::sys::resolve`].

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// Parses a server port: `0..=65535`, where 0 asks the kernel to choose.
pub fn parse_server_port(s: &str) -> std::result::Result<u16, String> {
    parse_port(s, 0)
}

/// Parses a client port: `1..=65535` (port 0 cannot be connected to).
pub fn parse_client_port(s: &str) -> std::result::Result<u16, String> {
    parse_port(s, 1)
}

fn parse_port(s: &str, min: u16) -> std::result::Result<u16, String> {
    // ASCII digits only (leading zeros are fine): no sign, no spaces, no `0x`, which
    // Rust's and C's number parsers would each take differently.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not a port number ({min}..=65535)"));
    }
    match s.parse::<u32>() {
        Ok(n) if n >= u32::from(min) && n <= 65535 => Ok(n as u16),
        _ => Err(format!("port {s} is out of range ({min}..=65535)")),
    }
}

/// Parses a local address to bind: an IPv4 or IPv6 literal (`0.0.0.0`, `::`, `[::1]`).
pub fn parse_bind_ip(s: &str) -> std::result::Result<IpAddr, String> {
    let bare = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    bare.parse()
        .map_err(|_| format!("'{s}' is not an IPv4 or IPv6 address"))
}

/// A host as typed on the command line: a literal or a name, resolved on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host(String);

impl Host {
    /// Accepts an IPv4/IPv6 literal (IPv6 with or without brackets) or a host name.
    ///
    /// A colon or a bracket is only allowed in an IPv6 literal: `localhost:9190` is a
    /// `HOST:PORT` target, not a host, and taking it for a name would only fail later, in
    /// name resolution, with a less helpful message.
    pub fn parse(s: &str) -> std::result::Result<Host, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("the host is empty".into());
        }
        if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("'{s}' is not a host name or address"));
        }
        let bare = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(t);
        let bracketed = bare.len() != t.len();
        if (bracketed || bare.contains([':', '[', ']'])) && !is_ipv6_literal(bare) {
            return Err(if has_port(t) {
                format!("'{s}' is not a host: it holds a port (write HOST PORT, or each target as HOST:PORT)")
            } else {
                format!("'{s}' is not a host name or address")
            });
        }
        Ok(Host(bare.to_string()))
    }

    /// The host as typed, without IPv6 brackets: what name resolution is asked for.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The host as an IP literal, when it is one (no resolution needed).
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }

    /// `host:port` as a user would write it (`[::1]:9190` for IPv6).
    pub fn with_port(&self, port: u16) -> String {
        if self.0.contains(':') {
            format!("[{}]:{port}", self.0)
        } else {
            format!("{}:{port}", self.0)
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IPv6 literal, with or without a zone (`fe80::1%eth0`), which the resolver takes.
fn is_ipv6_literal(s: &str) -> bool {
    let addr = s.split_once('%').map_or(s, |(a, _)| a);
    addr.parse::<std::net::Ipv6Addr>().is_ok()
}

/// A server as a `HOST:PORT` target: `127.0.0.1:9190`, `localhost:9190`, `[::1]:9190`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host, as [`Host::parse`] takes it.
    pub host: Host,
    /// The port, `1..=65535`.
    pub port: u16,
}

/// Whether `s` is written as a `HOST:PORT` target rather than as a bare host: it is
/// `[…]:…`, or it holds exactly one colon. An IPv6 literal without brackets (`::1`) has
/// several colons and is a host, never a target: which colon would start the port is
/// ambiguous (`::1:9190`), so in a target an IPv6 address must be in brackets.
pub fn has_port(s: &str) -> bool {
    if s.starts_with('[') {
        return s.contains("]:");
    }
    s.matches(':').count() == 1
}

impl Target {
    /// Parses `HOST:PORT`; an IPv6 address in brackets (`[::1]:9190`).
    pub fn parse(s: &str) -> std::result::Result<Target, String> {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((v6, port)) = rest.split_once("]:") else {
                return Err(format!("'{s}' is not HOST:PORT (IPv6 is written [::1]:9190)"));
            };
            if !is_ipv6_literal(v6) {
                return Err(format!("'{v6}' in '{s}' is not an IPv6 address"));
            }
            (v6, port)
        } else {
            match s.split_once(':') {
                Some((host, port)) if !port.contains(':') => (host, port),
                Some(_) => return Err(format!("'{s}' is not HOST:PORT (IPv6 is written [::1]:9190)")),
                None => return Err(format!("'{s}' has no port (write HOST:PORT)")),
            }
        };
        Ok(Target {
            host: Host::parse(host).map_err(|e| format!("in '{s}': {e}"))?,
            port: parse_client_port(port).map_err(|e| format!("in '{s}': {e}"))?,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host.with_port(self.port))
    }
}

/// Parses a positive duration: `500ms`, `2s`, `1m`, `1.5s`; a bare number is seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let (num, scale_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (t, 1000.0)
    };
    let bad = || format!("'{s}' is not a duration (examples: 500ms, 2s, 1m, 10)");
    let value: f64 = num.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    let ms = value * scale_ms;
    // A day is far beyond any sensible network timeout; refusing more keeps arithmetic on
    // deadlines (Instant + Duration) from overflowing.
    if ms > 86_400_000.0 {
        return Err(format!("'{s}' is longer than a day"));
    }
    let d = Duration::from_micros((ms * 1000.0).round() as u64);
    if d.is_zero() {
        return Err(format!("'{s}' must be greater than zero"));
    }
    Ok(d)
}

/// [`parse_duration`] for a command-line option whose default is shown as typed.
pub fn parse_human_duration(s: &str) -> std::result::Result<HumanDuration, String> {
    parse_duration(s).map(HumanDuration)
}

/// Shows a duration the way it would be typed: `5s`, `500ms`, `1.5s`, `2m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            write!(f, "{}us", self.0.as_micros())
        } else if ms % 60_000 == 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else if ms < 1000 {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", self.0.as_secs_f64())
        }
    }
}

/// A block of addresses as `--proxy-from` takes it: `10.0.0.0/8`, `2001:db8::/32`, or one
/// address (`127.0.0.1`, `::1`: the whole length). An IPv4 address an IPv6 socket shows
/// as `::ffff:a.b.c.d` is in a block when `a.b.c.d` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR` or `ADDR/PREFIX` (IPv6 with or without brackets). The prefix is
    /// decimal digits, at most the address's length, no leading zero; bits set past the
    /// prefix are a mistake (which block was meant?), not rounded away.
    pub fn parse(s: &str) -> std::result::Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network =
            parse_bind_ip(addr).map_err(|_| format!("'{s}' is not an address or ADDR/PREFIX block"))?;
        let bits: u8 = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => {
                let digits = !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
                match p.parse::<u8>() {
                    Ok(n) if digits && n <= bits && (p.len() == 1 || !p.starts_with('0')) => n,
                    _ => return Err(format!("'{s}': the prefix length must be 0..={bits}")),
                }
            }
        };
        let cidr = Cidr { network, prefix };
        let masked = cidr.masked(network);
        if masked != network {
            return Err(format!(
                "'{s}' has bits set past its /{prefix} prefix (did you mean {masked}/{prefix}?)"
            ));
        }
        // A block written as IPv4-mapped IPv6 is the IPv4 block it maps.
        Ok(match network {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Cidr {
                    network: IpAddr::V4(v4),
                    prefix: prefix - 96,
                },
                None => cidr,
            },
            _ => cidr,
        })
    }

    /// Whether `ip` is in this block. An IPv4-mapped IPv6 address is taken as the IPv4
    /// address it maps; IPv4 and IPv6 blocks never hold each other's addresses.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_ipv4() == self.network.is_ipv4() && self.masked(ip) == self.network
    }

    /// `ip` with the bits past the prefix cleared (`ip` of the block's family).
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ports() {
        assert_eq!(parse_server_port("0"), Ok(0));
        assert_eq!(parse_server_port("9190"), Ok(9190));
        assert_eq!(parse_server_port("65535"), Ok(65535));
        assert!(parse_server_port("65536").is_err());
        assert!(parse_server_port("70000").is_err());
        assert!(parse_server_port("-1").is_err());
        assert!(parse_server_port("abc").is_err());
        assert!(parse_server_port("").is_err());
        assert!(parse_server_port("99999999999999999999999").is_err());
        assert_eq!(parse_server_port("09190"), Ok(9190), "leading zeros are fine");
        for bad in [" 80", "80 ", "+80", "-0", "0x50", "8_0", "８０"] {
            assert!(parse_server_port(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn client_ports_exclude_zero() {
        assert!(parse_client_port("0").is_err());
        assert_eq!(parse_client_port("1"), Ok(1));
        assert_eq!(parse_client_port("65535"), Ok(65535));
    }

    #[test]
    fn hosts() {
        let h = Host::parse("127.0.0.1").unwrap();
        assert_eq!(h.ip(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(h.with_port(9190), "127.0.0.1:9190");
        let h = Host::parse("[::1]").unwrap();
        assert_eq!(h.ip(), Some("::1".parse().unwrap()));
        assert_eq!(h.with_port(9190), "[::1]:9190");
        assert_eq!(Host::parse("::1").unwrap().with_port(1), "[::1]:1");
        assert_eq!(Host::parse("localhost").unwrap().ip(), None);
        assert!(Host::parse("").is_err());
        assert!(Host::parse("a b").is_err());
    }

    #[test]
    fn a_host_with_a_colon_is_an_ipv6_literal_or_refused() {
        assert_eq!(Host::parse("fe80::1%lo").unwrap().name(), "fe80::1%lo");
        assert_eq!(
            Host::parse("::ffff:127.0.0.1").unwrap().name(),
            "::ffff:127.0.0.1"
        );
        let e = Host::parse("localhost:9190").unwrap_err();
        assert!(e.contains("holds a port"), "{e}");
        let e = Host::parse("[::1]:9190").unwrap_err();
        assert!(e.contains("holds a port"), "{e}");
        for bad in ["a:b:c", "[::1", "::1]", "[localhost]", "1::2::3"] {
            assert!(Host::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn targets() {
        let t = Target::parse("127.0.0.1:9190").unwrap();
        assert_eq!((t.host.name(), t.port), ("127.0.0.1", 9190));
        let t = Target::parse("[::1]:9190").unwrap();
        assert_eq!((t.host.ip(), t.port), (Some("::1".parse().unwrap()), 9190));
        assert_eq!(t.to_string(), "[::1]:9190");
        let t = Target::parse("localhost:1").unwrap();
        assert_eq!((t.host.name(), t.port), ("localhost", 1));
        for (bad, says) in [
            ("127.0.0.1", "no port"),
            ("::1:9190", "[::1]:9190"),
            ("[::1]9190", "[::1]:9190"),
            ("[127.0.0.1]:1", "not an IPv6"),
            ("localhost:0", "out of range"),
            ("localhost:+80", "not a port"),
            ("localhost:", "not a port"),
            (":9190", "empty"),
            ("[::1]:70000", "out of range"),
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn what_has_a_port() {
        for yes in ["a:1", "127.0.0.1:9190", "[::1]:9190", "[::1]:", "a:"] {
            assert!(has_port(yes), "{yes}");
        }
        for no in ["a", "::1", "fe80::1:2", "[::1]", "127.0.0.1", ""] {
            assert!(!has_port(no), "{no}");
        }
    }

    #[test]
    fn bind_ips() {
        assert_eq!(parse_bind_ip("0.0.0.0"), Ok("0.0.0.0".parse().unwrap()));
        assert_eq!(parse_bind_ip("::"), Ok("::".parse().unwrap()));
        assert_eq!(parse_bind_ip("[::1]"), Ok("::1".parse().unwrap()));
        assert!(parse_bind_ip("localhost").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["0", "0s", "0ms", "-1", "abc", "", "1h", "NaN", "inf", "1e10"] {
            assert!(parse_duration(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn human_durations() {
        let h = |d| HumanDuration(d).to_string();
        assert_eq!(h(Duration::from_secs(5)), "5s");
        assert_eq!(h(Duration::from_millis(500)), "500ms");
        assert_eq!(h(Duration::from_millis(1500)), "1.5s");
        assert_eq!(h(Duration::from_secs(120)), "2m");
    }
    #[test]
    fn cidr_blocks_and_what_they_hold() {
        let c = |s: &str| Cidr::parse(s).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(c("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!c("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(c("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!c("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(c("0.0.0.0/0").contains(ip("203.0.113.7")));
        assert!(
            !c("0.0.0.0/0").contains(ip("2001:db8::1")),
            "IPv4 block, IPv6 peer"
        );
        assert!(c("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!c("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(c("[::1]").contains(ip("::1")));
        assert!(c("::/0").contains(ip("::1")));
        // A dual-stack socket shows an IPv4 peer as ::ffff:a.b.c.d.
        assert!(c("127.0.0.0/8").contains(ip("::ffff:127.0.0.9")));
        assert!(
            !c("::/0").contains(ip("::ffff:127.0.0.9")),
            "a mapped peer is IPv4"
        );
        assert_eq!(c("::ffff:10.0.0.0/104"), c("10.0.0.0/8"));
        assert_eq!(c("10.1.0.0/16").to_string(), "10.1.0.0/16");
    }

    #[test]
    fn cidr_mistakes_are_refused() {
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/08",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/8/8",
            "localhost",
            "10.0.0",
            "10.0.0.1/8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Cidr::parse("10.0.0.1/8").unwrap_err().contains("10.0.0.0/8"));
    }
}
