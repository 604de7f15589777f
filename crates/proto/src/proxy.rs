//! The PROXY protocol header (HAProxy's `send-proxy` and `send-proxy-v2`), parsed from the
//! bytes a connection starts with, no I/O: a balancer in front sends it before the
//! client's own bytes, to say who the client really is (the connection's peer is the
//! balancer). Version 1 is one text line, version 2 a binary block; both are described in
//! HAProxy's `proxy-protocol.txt`, and docs/contract.md#behind-a-balancer says what the
//! server does with them.
//!
//! [`parse`] looks at everything received so far and says: wait for more, here is the
//! header and its length, or this is not a valid header (the connection is then closed).
//! It never needs more than [`MAX_HEADER`] bytes to decide.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12 bytes a version 2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest version 1 line, CRLF included (the protocol's own bound).
pub const V1_MAX: usize = 107;

/// The most a version 2 header may carry after its 16 fixed bytes (addresses and TLVs):
/// a header announcing more is refused rather than waited for.
pub const V2_MAX_BODY: usize = 4096;

/// The most bytes [`parse`] needs to decide.
pub const MAX_HEADER: usize = 16 + V2_MAX_BODY;

/// A valid header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// 1 or 2.
    pub version: u8,
    /// The client's address and the address it connected to, as the balancer saw them;
    /// `None` for a header that carries none (version 1 `UNKNOWN`, version 2 `LOCAL`, an
    /// unspecified or non-internet family): the connection's own addresses stand.
    pub addresses: Option<(SocketAddr, SocketAddr)>,
}

/// Why bytes are not a valid header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Neither `PROXY ` nor the version 2 signature.
    #[error("no PROXY protocol header")]
    NotProxy,
    /// A version 1 line with no CRLF in its first 107 bytes, or a version 2 header
    /// announcing more than 4 KiB.
    #[error("PROXY header too long")]
    TooLong,
    /// A version 1 line that is not `PROXY TCP4|TCP6|UNKNOWN ...` with valid addresses
    /// and ports.
    #[error("malformed PROXY v1 line")]
    BadLine,
    /// A version 2 header with another version, an unknown command, a datagram
    /// transport, or addresses shorter than its family needs.
    #[error("malformed PROXY v2 header")]
    BadBinary,
    /// The connection ended before the header did.
    #[error("connection closed inside the PROXY header")]
    Truncated,
    /// A valid header from a peer the server was not told to believe (`--proxy-from`):
    /// never returned by [`parse`], which does not know the peer; the connection core
    /// says it.
    #[error("PROXY header from a peer not in --proxy-from")]
    Untrusted,
}

/// What the bytes received so far are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// A header may still come: read more.
    Incomplete,
    /// A header, `len` bytes long; what follows is the client's.
    Header {
        /// The header.
        header: Header,
        /// Its length in bytes.
        len: usize,
    },
    /// Not a valid header.
    Invalid(Invalid),
}

/// Parses the start of a connection.
pub fn parse(bytes: &[u8]) -> Parse {
    const V1_START: &[u8] = b"PROXY ";
    if bytes.starts_with(V1_START) {
        return v1(bytes);
    }
    if bytes.starts_with(&V2_SIGNATURE) {
        return v2(bytes);
    }
    // Too short to tell: what may still become either start waits for more.
    if V1_START.starts_with(bytes) || V2_SIGNATURE.starts_with(bytes) {
        return Parse::Incomplete;
    }
    Parse::Invalid(Invalid::NotProxy)
}

fn v1(bytes: &[u8]) -> Parse {
    let window = &bytes[..bytes.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if bytes.len() >= V1_MAX {
            Parse::Invalid(Invalid::TooLong)
        } else {
            Parse::Incomplete
        };
    };
    // A lone LF (or a CR anywhere but right before it) is not a line end.
    if lf == 0 || window[lf - 1] != b'\r' || window[..lf - 1].contains(&b'\r') {
        return Parse::Invalid(Invalid::BadLine);
    }
    // The line is US-ASCII, whatever follows UNKNOWN included (found by the fuzz target).
    let line = &window[..lf - 1];
    let Some(line) = line.is_ascii().then(|| String::from_utf8_lossy(line)) else {
        return Parse::Invalid(Invalid::BadLine);
    };
    match v1_addresses(&line) {
        Some(addresses) => Parse::Header {
            header: Header {
                version: 1,
                addresses,
            },
            len: lf + 1,
        },
        None => Parse::Invalid(Invalid::BadLine),
    }
}

/// `PROXY TCP4 src dst sport dport`, `PROXY TCP6 ...` or `PROXY UNKNOWN[ anything]`.
#[allow(clippy::option_option)]
fn v1_addresses(line: &str) -> Option<Option<(SocketAddr, SocketAddr)>> {
    let mut fields = line.split(' ');
    if fields.next() != Some("PROXY") {
        return None;
    }
    let family = fields.next()?;
    if family == "UNKNOWN" {
        return Some(None);
    }
    let (src, dst, sport, dport) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    let (src, dst): (IpAddr, IpAddr) = match family {
        "TCP4" => (
            src.parse::<Ipv4Addr>().ok()?.into(),
            dst.parse::<Ipv4Addr>().ok()?.into(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>().ok()?.into(),
            dst.parse::<Ipv6Addr>().ok()?.into(),
        ),
        _ => return None,
    };
    Some(Some((
        SocketAddr::new(src, v1_port(sport)?),
        SocketAddr::new(dst, v1_port(dport)?),
    )))
}

/// A decimal port, 0..=65535, with no leading zero (octal confusion, says the spec).
fn v1_port(s: &str) -> Option<u16> {
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

fn v2(bytes: &[u8]) -> Parse {
    if bytes.len() < 16 {
        return Parse::Incomplete;
    }
    let (ver_cmd, fam) = (bytes[12], bytes[13]);
    let body = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    if ver_cmd >> 4 != 2 {
        return Parse::Invalid(Invalid::BadBinary);
    }
    if body > V2_MAX_BODY {
        return Parse::Invalid(Invalid::TooLong);
    }
    let len = 16 + body;
    if bytes.len() < len {
        return Parse::Incomplete;
    }
    let addrs = &bytes[16..len];
    let addresses = match (ver_cmd & 0x0f, fam >> 4, fam & 0x0f) {
        // LOCAL: the balancer speaking for itself (a health check).
        (0x0, _, _) => None,
        (0x1, _, 0x2) => return Parse::Invalid(Invalid::BadBinary),
        (0x1, 0x1, _) if addrs.len() >= 12 => {
            let ip = |at: usize| IpAddr::from([addrs[at], addrs[at + 1], addrs[at + 2], addrs[at + 3]]);
            let port = |at: usize| u16::from_be_bytes([addrs[at], addrs[at + 1]]);
            Some((SocketAddr::new(ip(0), port(8)), SocketAddr::new(ip(4), port(10))))
        }
        (0x1, 0x2, _) if addrs.len() >= 36 => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&addrs[at..at + 16]);
                IpAddr::from(octets)
            };
            let port = |at: usize| u16::from_be_bytes([addrs[at], addrs[at + 1]]);
            Some((
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
            ))
        }
        (0x1, 0x1 | 0x2, _) => return Parse::Invalid(Invalid::BadBinary),
        // AF_UNSPEC, AF_UNIX or a family yet to come: the connection's own addresses.
        (0x1, _, _) => None,
        _ => return Parse::Invalid(Invalid::BadBinary),
    };
    Parse::Header {
        header: Header {
            version: 2,
            addresses,
        },
        len,
    }
}

/// A version 1 line for these addresses (what a balancer sends; for tests and tools).
pub fn v1_line(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
    .into_bytes()
}

/// A version 2 PROXY header for these addresses, with no TLV (for tests and tools).
pub fn v2_header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut v = V2_SIGNATURE.to_vec();
    v.push(0x21);
    let (family, body): (u8, Vec<u8>) = match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (0x11, [s.octets().to_vec(), d.octets().to_vec()].concat()),
        (s, d) => {
            let six = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            };
            (0x21, [six(s).to_vec(), six(d).to_vec()].concat())
        }
    };
    v.push(family);
    let mut body = body;
    body.extend_from_slice(&source.port().to_be_bytes());
    body.extend_from_slice(&destination.port().to_be_bytes());
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(&body);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn version_1_lines() {
        let line = b"PROXY TCP4 203.0.113.7 10.0.0.2 51234 9190\r\nhello\0";
        assert_eq!(
            parse(line),
            Parse::Header {
                header: Header {
                    version: 1,
                    addresses: Some((a("203.0.113.7:51234"), a("10.0.0.2:9190")))
                },
                len: line.len() - 6
            }
        );
        assert!(matches!(
            parse(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n"),
            Parse::Header {
                header: Header {
                    addresses: Some(_),
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parse::Header {
                header: Header { addresses: None, .. },
                len: 15
            }
        ));
        assert!(matches!(
            parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"),
            Parse::Header {
                header: Header { addresses: None, .. },
                ..
            }
        ));
    }

    #[test]
    fn version_1_mistakes() {
        let bad = |b: &[u8]| parse(b) == Parse::Invalid(Invalid::BadLine);
        assert!(bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), "a leading zero");
        assert!(bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"));
        assert!(
            bad(b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n"),
            "family and address differ"
        );
        assert!(bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"));
        assert!(bad(b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), "two spaces");
        assert!(bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), "a lone LF");
        assert!(bad(b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"));
        assert!(bad(b"PROXY UNKNOWN \xd3\x96\r\n"), "not ASCII");
        assert_eq!(parse(&[b'P'; 3]), Parse::Invalid(Invalid::NotProxy));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Parse::Invalid(Invalid::NotProxy));
        assert_eq!(parse(b"hello\0"), Parse::Invalid(Invalid::NotProxy));
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(200, b'x');
        assert_eq!(parse(&long), Parse::Invalid(Invalid::TooLong));
    }

    #[test]
    fn version_2_headers() {
        let (src, dst) = (a("198.51.100.9:40000"), a("10.0.0.2:9190"));
        let mut h = v2_header(src, dst);
        let len = h.len();
        h.extend_from_slice(b"hello\0");
        assert_eq!(
            parse(&h),
            Parse::Header {
                header: Header {
                    version: 2,
                    addresses: Some((src, dst))
                },
                len
            }
        );
        let six = v2_header(a("[2001:db8::7]:1"), a("[::1]:2"));
        assert!(matches!(
            parse(&six),
            Parse::Header { header: Header { addresses: Some((s, _)), .. }, len: 52 } if s == a("[2001:db8::7]:1")
        ));
        // LOCAL (a health check), with or without addresses.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert!(matches!(
            parse(&local),
            Parse::Header {
                header: Header { addresses: None, .. },
                len: 16
            }
        ));
    }

    #[test]
    fn version_2_mistakes_and_bounds() {
        let with = |ver_cmd: u8, fam: u8, body: &[u8]| {
            let mut v = V2_SIGNATURE.to_vec();
            v.extend_from_slice(&[ver_cmd, fam]);
            v.extend_from_slice(&(body.len() as u16).to_be_bytes());
            v.extend_from_slice(body);
            parse(&v)
        };
        assert_eq!(
            with(0x11, 0x11, &[0; 12]),
            Parse::Invalid(Invalid::BadBinary),
            "version 1 in v2"
        );
        assert_eq!(
            with(0x22, 0x11, &[0; 12]),
            Parse::Invalid(Invalid::BadBinary),
            "command 2"
        );
        assert_eq!(
            with(0x21, 0x12, &[0; 12]),
            Parse::Invalid(Invalid::BadBinary),
            "datagram"
        );
        assert_eq!(
            with(0x21, 0x11, &[0; 8]),
            Parse::Invalid(Invalid::BadBinary),
            "short addresses"
        );
        assert_eq!(with(0x21, 0x21, &[0; 20]), Parse::Invalid(Invalid::BadBinary));
        assert!(
            matches!(
                with(0x21, 0x31, &[0; 216]),
                Parse::Header {
                    header: Header { addresses: None, .. },
                    ..
                }
            ),
            "a UNIX family: the connection's own addresses"
        );
        // A huge length is refused at once, not waited for.
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(parse(&huge), Parse::Invalid(Invalid::TooLong));
        // TLVs after the addresses are skipped.
        let mut tlv = vec![0u8; 12];
        tlv.extend_from_slice(&[0x04, 0x00, 0x01, 0x7f]);
        assert!(matches!(with(0x21, 0x11, &tlv), Parse::Header { len: 32, .. }));
    }

    #[test]
    fn every_prefix_of_a_header_waits_for_more() {
        let v1 = v1_line(a("1.2.3.4:5"), a("6.7.8.9:10"));
        let v2 = v2_header(a("1.2.3.4:5"), a("6.7.8.9:10"));
        for h in [v1, v2] {
            for cut in 0..h.len() {
                assert_eq!(parse(&h[..cut]), Parse::Incomplete, "{cut} bytes of {h:?}");
            }
            assert!(matches!(parse(&h), Parse::Header { .. }));
        }
    }
}
