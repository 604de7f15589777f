//! The kernel's view of TCP sockets, as `ss` reads it, with no privilege:
//! `NETLINK_SOCK_DIAG` (`inet_diag`, IPv4 and IPv6), else `/proc/net/tcp` and `tcp6`.
//! Each socket's state (LISTEN, ESTABLISHED, TIME_WAIT, …), its queues and its two
//! addresses. For a listening socket the receive queue is the accept queue's length (the
//! connections the kernel has completed and nobody has `accept()`ed) and the send queue
//! its backlog. These calls are the lesson's, not the programs': not traced.

use std::fs;
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub use crate::kernel::{TcpSocket, TcpState};

/// Where a sample came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `NETLINK_SOCK_DIAG`.
    SockDiag,
    /// `/proc/net/tcp` and `/proc/net/tcp6`, netlink having refused.
    ProcNet,
}

/// Most sockets a sample looks through (a busy machine's table is bounded too).
const MAX_SEEN: usize = 200_000;

/// The TCP sockets, IPv4 and IPv6, with one of `ports` at either end: from
/// `NETLINK_SOCK_DIAG`, or from `/proc/net/tcp{,6}` if netlink refuses; the error is
/// netlink's and `/proc`'s if both do.
pub fn tcp_sockets(ports: &[u16]) -> io::Result<(Vec<TcpSocket>, Source)> {
    match sock_diag(ports) {
        Ok(s) => Ok((s, Source::SockDiag)),
        Err(netlink) => proc_net(ports).map(|s| (s, Source::ProcNet)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("NETLINK_SOCK_DIAG: {netlink}; /proc/net/tcp: {e}"),
            )
        }),
    }
}

/// Whether a socket has one of `ports` at either end.
fn on(ports: &[u16], s: &TcpSocket) -> bool {
    ports.contains(&s.local.port()) || ports.contains(&s.peer.port())
}

/// `socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG)`, then for IPv4 and IPv6 a
/// `sendto(2)` of an `inet_diag_req_v2` dump request for TCP in every state, with the
/// bytecode of `port_filter` (the ports, filtered in the kernel), and
/// `recv(2)` of the answers until `NLMSG_DONE`.
pub fn sock_diag(ports: &[u16]) -> io::Result<Vec<TcpSocket>> {
    // SAFETY: socket(2) takes no pointer; a returned descriptor is ours alone.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a descriptor socket(2) just returned, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let timeout = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: `timeout` is a live timeval of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut seen = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    // Filtered in the kernel: a busy machine has thousands of TCP sockets (TIME_WAIT
    // lingers a minute), and the demo samples twice an exchange. The answers are checked
    // again below all the same.
    let filter = port_filter(ports);
    for (seq, family) in [(1u32, libc::AF_INET as u8), (2, libc::AF_INET6 as u8)] {
        let req = dump_request(family, seq, filter.as_deref());
        // SAFETY: sockaddr_nl is plain data; all zeroes (then the family) addresses the kernel.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: `req` and `kernel` are live for the call, lengths as given.
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        'answers: loop {
            // SAFETY: `buf` is live and writable for its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            match parse_answers(&buf[..n as usize], &mut |s| {
                seen += 1;
                if on(ports, &s) {
                    found.push(s);
                }
            })? {
                More::Done => break 'answers,
                More::Yes if seen > MAX_SEEN => {
                    return Err(io::Error::other(format!("more than {MAX_SEEN} TCP sockets")));
                }
                More::Yes => {}
            }
        }
    }
    Ok(found)
}

/// The `inet_diag` bytecode `sport == P or dport == P` for each of `ports`, compiled as
/// `ss 'sport = :P or dport = :P'` compiles it, so that the kernel answers with those
/// sockets only. Each op is a `struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }`; a
/// port test is followed by a second op whose `no` holds the port. A run matches when it
/// ends exactly at the end. The tests are chained as ss chains `or`: a test's `yes` falls
/// through to a `JMP` that goes to the end (match), its `no` skips that `JMP` to the next
/// test, and the last test's `no` jumps 4 bytes past the end (no match). (The kernel
/// checks that every `no` lands where a chain of `yes` can also reach.) `None` for no
/// port, or more than 1,000.
fn port_filter(ports: &[u16]) -> Option<Vec<u8>> {
    const JMP: u8 = 1; // INET_DIAG_BC_JMP
    const S_EQ: u8 = 11; // INET_DIAG_BC_S_EQ
    const D_EQ: u8 = 12; // INET_DIAG_BC_D_EQ
    if ports.is_empty() || ports.len() > 1000 {
        return None;
    }
    let tests: Vec<(u8, u16)> = ports.iter().flat_map(|p| [(S_EQ, *p), (D_EQ, *p)]).collect();
    let total = tests.len() * 8 + (tests.len() - 1) * 4;
    let mut bc = Vec::with_capacity(total);
    for (code, port) in tests {
        bc.extend_from_slice(&[code, 8]);
        bc.extend_from_slice(&12u16.to_ne_bytes());
        bc.extend_from_slice(&[0, 0]);
        bc.extend_from_slice(&port.to_ne_bytes());
        if bc.len() < total {
            // From this JMP, `total - bc.len()` bytes to the end: its `no` goes there.
            let to_end = u16::try_from(total - bc.len()).ok()?;
            bc.extend_from_slice(&[JMP, 4]);
            bc.extend_from_slice(&to_end.to_ne_bytes());
        }
    }
    Some(bc)
}

/// A netlink header and an `inet_diag_req_v2` asking for the TCP sockets of `family`
/// (those `filter` passes, if given: an `INET_DIAG_REQ_BYTECODE` attribute).
fn dump_request(family: u8, seq: u32, filter: Option<&[u8]>) -> Vec<u8> {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const INET_DIAG_REQ_BYTECODE: u16 = 1;
    let attr = filter.map_or(0, |f| 4 + f.len());
    let len = (16 + 56 + attr) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it in
    m.push(family);
    m.push(libc::IPPROTO_TCP as u8);
    m.push(0); // no extensions
    m.push(0);
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    m.resize(16 + 56, 0); // the socket id: any (a dump ignores it)
    if let Some(f) = filter {
        m.extend_from_slice(&((4 + f.len()) as u16).to_ne_bytes());
        m.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        m.extend_from_slice(f);
    }
    m
}

/// Whether a dump's answers go on.
#[derive(Debug, PartialEq, Eq)]
enum More {
    Yes,
    Done,
}

/// The sockets in one `recv()` of netlink answers, each given to `each`.
fn parse_answers(mut b: &[u8], each: &mut dyn FnMut(TcpSocket)) -> io::Result<More> {
    let u32_at = |b: &[u8], i: usize| -> u32 { u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) };
    while b.len() >= 16 {
        let len = u32_at(b, 0) as usize;
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        if len < 16 || len > b.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a netlink message cut short",
            ));
        }
        let body = &b[16..len];
        match kind {
            k if k == libc::NLMSG_DONE as u16 => return Ok(More::Done),
            k if k == libc::NLMSG_ERROR as u16 => {
                let errno = if body.len() >= 4 {
                    -(u32_at(body, 0) as i32)
                } else {
                    libc::EIO
                };
                return Err(io::Error::from_raw_os_error(errno));
            }
            _ => {
                if let Some(s) = parse_diag_msg(body) {
                    each(s);
                }
            }
        }
        // Messages are aligned to 4 bytes.
        let next = (len + 3) & !3;
        b = b.get(next..).unwrap_or_default();
    }
    Ok(More::Yes)
}

/// An `inet_diag_msg`: family, state, timer, retransmits, the socket id (ports and
/// addresses in network order), expires, rqueue, wqueue, uid, inode.
fn parse_diag_msg(m: &[u8]) -> Option<TcpSocket> {
    if m.len() < 72 {
        return None;
    }
    let state = TcpState::from_kernel(m[1])?;
    let port = |i: usize| u16::from_be_bytes([m[i], m[i + 1]]);
    let ip = |i: usize| -> Option<IpAddr> {
        match i32::from(m[0]) {
            libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(m[i], m[i + 1], m[i + 2], m[i + 3]))),
            libc::AF_INET6 => {
                let a: [u8; 16] = m[i..i + 16].try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(a)))
            }
            _ => None,
        }
    };
    let word = |i: usize| u32::from_ne_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]]);
    Some(TcpSocket {
        state,
        local: SocketAddr::new(ip(8)?, port(4)),
        peer: SocketAddr::new(ip(24)?, port(6)),
        rqueue: word(56),
        wqueue: word(60),
        inode: u64::from(word(68)),
    })
}

/// TIME_WAIT sockets held and the most the kernel keeps (`tw` of /proc/net/sockstat,
/// `net.ipv4.tcp_max_tw_buckets`), when the table is full: a connection closed now
/// skips TIME_WAIT ("time wait bucket table overflow"). Reads the two files (`/proc`
/// of the calling process's network namespace); `None` when the table has room, or when
/// they cannot be read.
pub fn time_wait_table_full() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/net/sockstat").ok()?;
    let mut words = stat.lines().find(|l| l.starts_with("TCP:"))?.split_whitespace();
    let held = words.by_ref().skip_while(|w| *w != "tw").nth(1)?.parse().ok()?;
    let max = fs::read_to_string("/proc/sys/net/ipv4/tcp_max_tw_buckets")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (held >= max).then_some((held, max))
}

/// The same from `/proc/net/tcp` and `/proc/net/tcp6` (`read(2)` of each).
pub fn proc_net(ports: &[u16]) -> io::Result<Vec<TcpSocket>> {
    let mut found = Vec::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match fs::read_to_string(path) {
            Ok(table) => found.extend(parse_proc_net(&table).into_iter().filter(|s| on(ports, s))),
            // A kernel without IPv6 has no tcp6.
            Err(e) if path.ends_with('6') && e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// The rows of a `/proc/net/tcp{,6}` table: `sl local rem st tx_queue:rx_queue …`, the
/// addresses in hex words of host order, the ports in hex.
fn parse_proc_net(table: &str) -> Vec<TcpSocket> {
    let addr = |s: &str| -> Option<SocketAddr> {
        let (ip, port) = s.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let words: Option<Vec<[u8; 4]>> = (0..ip.len() / 8)
            .map(|k| {
                Some(
                    u32::from_str_radix(ip.get(k * 8..k * 8 + 8)?, 16)
                        .ok()?
                        .to_ne_bytes(),
                )
            })
            .collect();
        let bytes: Vec<u8> = words?.concat();
        let ip = match bytes.len() {
            4 => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
            16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (tx, rx) = f.get(4)?.split_once(':')?;
            Some(TcpSocket {
                local: addr(f.get(1)?)?,
                peer: addr(f.get(2)?)?,
                state: TcpState::from_kernel(u8::from_str_radix(f.get(3)?, 16).ok()?)?,
                wqueue: u32::from_str_radix(tx, 16).ok()?,
                rqueue: u32::from_str_radix(rx, 16).ok()?,
                inode: f.get(9).and_then(|i| i.parse().ok()).unwrap_or(0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    /// The sockets with an end at `at` (on a busy machine another program's may have the
    /// same port number at another address).
    fn at(at: SocketAddr, source: fn(&[u16]) -> io::Result<Vec<TcpSocket>>) -> Vec<TcpSocket> {
        let all = source(&[at.port()]).unwrap();
        all.into_iter()
            .filter(|s| s.local == at || s.peer == at)
            .collect()
    }

    fn listener_of(addr: SocketAddr, source: fn(&[u16]) -> io::Result<Vec<TcpSocket>>) -> TcpSocket {
        at(addr, source)
            .into_iter()
            .find(|s| s.state == TcpState::Listen)
            .expect("the listener")
    }

    #[test]
    fn a_listener_with_n_unaccepted_connections_shows_recv_q_n_and_its_backlog() {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        socket.listen(7).unwrap();
        let listener = TcpListener::from(socket);
        let addr = listener.local_addr().unwrap();
        let port = addr.port();
        let clients: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        for source in [sock_diag as fn(&[u16]) -> io::Result<Vec<TcpSocket>>, proc_net] {
            let l = listener_of(addr, source);
            assert_eq!((l.rqueue, l.local.port()), (3, port));
        }
        assert_eq!(listener_of(addr, sock_diag).wqueue, 7, "the backlog");
        let (_first, _) = listener.accept().unwrap();
        assert_eq!(listener_of(addr, sock_diag).rqueue, 2);
        // The connected sockets are there too, both ends.
        let (_, source) = tcp_sockets(&[port]).unwrap();
        assert_eq!(source, Source::SockDiag);
        let all = at(addr, sock_diag);
        let est = all.iter().filter(|s| s.state == TcpState::Established).count();
        assert_eq!(est, 6, "three clients and three server ends: {all:?}");
        drop(clients);
    }

    #[test]
    fn each_socket_names_the_inode_its_descriptors_link_to() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let held = std::fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .unwrap()
            .ino();
        for source in [sock_diag as fn(&[u16]) -> io::Result<Vec<TcpSocket>>, proc_net] {
            assert_eq!(listener_of(addr, source).inode, held);
        }
    }

    #[test]
    fn the_side_that_closes_first_is_left_in_time_wait() {
        for host in ["127.0.0.1", "::1"] {
            let Ok(listener) = TcpListener::bind((host, 0)) else {
                eprintln!("SKIP: the_side_that_closes_first_is_left_in_time_wait: no {host}");
                continue;
            };
            let port = listener.local_addr().unwrap().port();
            let mut client = TcpStream::connect((host, port)).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            server.write_all(b"hi").unwrap();
            server.shutdown(Shutdown::Write).unwrap(); // the server closes first
            let mut got = Vec::new();
            client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            client.read_to_end(&mut got).unwrap();
            let server_end = server.local_addr().unwrap();
            let client_end = client.local_addr().unwrap();
            // The client has the server's FIN: CLOSE_WAIT on its side, FIN_WAIT2 on the
            // server's once the client's ACK of it is in (at once, or a moment later).
            let state_of = |s: &[TcpSocket], local: SocketAddr| {
                s.iter()
                    .find(|x| x.local == local && x.state != TcpState::Listen)
                    .map(|x| x.state)
            };
            let until = Instant::now() + Duration::from_secs(5);
            loop {
                let (s, _) = tcp_sockets(&[port]).unwrap();
                assert_eq!(
                    state_of(&s, client.local_addr().unwrap()),
                    Some(TcpState::CloseWait)
                );
                if state_of(&s, server_end) == Some(TcpState::FinWait2) {
                    break;
                }
                assert_eq!(state_of(&s, server_end), Some(TcpState::FinWait1));
                assert!(Instant::now() < until, "no FIN_WAIT2: {s:?}");
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(client);
            drop(server);
            let until = Instant::now() + Duration::from_secs(5);
            loop {
                let (s, _) = tcp_sockets(&[port]).unwrap();
                if state_of(&s, server_end) == Some(TcpState::TimeWait) {
                    // The client's end is gone: only the side that closed first waits.
                    // (Sockets of an earlier connection to the same port number may linger too.)
                    let ours = s.iter().filter(|x| {
                        (x.local, x.peer) == (server_end, client_end)
                            || (x.local, x.peer) == (client_end, server_end)
                    });
                    assert_eq!(ours.count(), 1, "{s:?}");
                    break;
                }
                if let Some((held, max)) = time_wait_table_full() {
                    eprintln!(
                        "SKIP: the_side_that_closes_first_is_left_in_time_wait: the kernel's \
                         TIME_WAIT table is full ({held} of tcp_max_tw_buckets {max}, other \
                         work's connections): it keeps no new TIME_WAIT socket now"
                    );
                    return;
                }
                assert!(Instant::now() < until, "no TIME_WAIT: {s:?}");
                std::thread::sleep(Duration::from_millis(5));
            }
            let proc = proc_net(&[port]).unwrap();
            assert!(
                proc.iter()
                    .any(|x| x.local == server_end && x.state == TcpState::TimeWait)
            );
        }
    }

    #[test]
    fn a_proc_net_row_is_read_in_host_order() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n";
        let got = parse_proc_net(table);
        if cfg!(target_endian = "little") {
            assert_eq!(got[0].local, "127.0.0.1:8080".parse().unwrap());
        }
        assert_eq!(
            (got[0].state, got[0].rqueue, got[0].wqueue),
            (TcpState::Listen, 3, 0)
        );
        let six = "h\n 0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 06 00000000:00000000 0\n";
        if cfg!(target_endian = "little") {
            assert_eq!(parse_proc_net(six)[0].local, "[::1]:80".parse().unwrap());
        }
        assert_eq!(parse_proc_net(six)[0].state, TcpState::TimeWait);
        assert!(parse_proc_net("h\n garbage\n 0: zz:zz").is_empty());
    }

    #[test]
    fn the_kernel_filters_by_port_and_the_filter_is_well_formed() {
        assert!(port_filter(&[]).is_none() && port_filter(&[1; 1001]).is_none());
        let bc = port_filter(&[80, 443]).unwrap();
        // Four tests of 8 bytes and three JMPs of 4.
        assert_eq!(bc.len(), 44);
        let no = |at: usize| u16::from_ne_bytes([bc[at + 2], bc[at + 3]]) as usize;
        // sport == 80: yes falls to the JMP at 8, which goes to the end; no skips it.
        assert_eq!((bc[0], bc[1], no(0)), (11, 8, 12));
        assert_eq!(u16::from_ne_bytes([bc[6], bc[7]]), 80);
        assert_eq!((bc[8], bc[9], 8 + no(8)), (1, 4, 44));
        // The last test, dport == 443: its no lands 4 past the end.
        assert_eq!((bc[36], 36 + no(36)), (12, 48));
        assert_eq!(u16::from_ne_bytes([bc[42], bc[43]]), 443);
        // The kernel takes it (an ill-formed one is EINVAL) and answers with the port's
        // sockets only.
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let (pa, pb) = (a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
        let mut seen = Vec::new();
        let fd = {
            // SAFETY: socket(2) takes no pointer.
            let raw = unsafe {
                libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                    libc::NETLINK_SOCK_DIAG,
                )
            };
            assert!(raw >= 0);
            // SAFETY: `raw` was just returned and is ours alone.
            unsafe { OwnedFd::from_raw_fd(raw) }
        };
        let req = dump_request(libc::AF_INET as u8, 1, port_filter(&[1, pa]).as_deref());
        // SAFETY: `req` is live for the call; a null address with length 0 is the kernel.
        let sent = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        assert_eq!(sent, req.len() as isize);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: `buf` is live and writable for its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            assert!(n > 0, "{}", io::Error::last_os_error());
            if parse_answers(&buf[..n as usize], &mut |s| seen.push(s)).unwrap() == More::Done {
                break;
            }
        }
        assert!(
            seen.iter().all(|s| s.local.port() == pa || s.peer.port() == pa),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .any(|s| s.local.port() == pa && s.state == TcpState::Listen)
        );
        assert!(!seen.iter().any(|s| s.local.port() == pb));
    }

    #[test]
    fn an_answer_cut_short_is_an_error_not_a_panic() {
        let mut m = 100u32.to_ne_bytes().to_vec();
        m.extend_from_slice(&[0u8; 20]);
        assert!(parse_answers(&m, &mut |_| {}).is_err());
        assert_eq!(parse_answers(&[1, 2, 3], &mut |_| {}).unwrap(), More::Yes);
    }
}
