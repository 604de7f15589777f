//! Packet capture on the loopback interface, for the lesson (`cargo xtask demo`): an
//! `AF_PACKET` socket bound to `lo`, a classic BPF filter attached in the kernel so that
//! only an exchange's packets are copied (tcpdump's way), each packet stamped by the kernel
//! (`SO_TIMESTAMP`), and a bound on what one exchange keeps.
//!
//! Capturing needs `CAP_NET_RAW` (root, `setcap cap_net_raw+ep` on the binary, or a private
//! user and network namespace, [`super::netns`]). Without it [`Capture::start`] says why in
//! one [`Refused`] and the caller carries on without packets: capture never fails a
//! scenario. These calls are the lesson's own, not the programs': they are not traced,
//! and each helper's doc names the call it makes.
//!
//! On `lo` the kernel shows every packet twice, as it leaves (`PACKET_OUTGOING`) and as it
//! arrives; like libpcap, only the arriving copy is kept, so the count is tcpdump's.

use std::fmt;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

pub use crate::kernel::{Frame, Transport};

/// What one exchange may keep: at most `packets` packets and `bytes` bytes of them, each
/// cut to `snaplen` bytes (the headers; the payload's length is still known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Packets kept at most.
    pub packets: usize,
    /// Bytes of captured frames kept at most.
    pub bytes: usize,
    /// Bytes of each frame kept (the kernel copies no more).
    pub snaplen: u32,
}

impl Default for Limits {
    /// 2,000 packets, 512 KiB, 256 bytes of each: Ethernet, IPv6 and TCP headers with
    /// every option, or an ICMP error with the datagram it quotes, fit in 256 bytes.
    fn default() -> Limits {
        Limits {
            packets: 2000,
            bytes: 512 * 1024,
            snaplen: 256,
        }
    }
}

/// What a capture kept, and what it did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The frames kept, in the order the kernel delivered them.
    pub frames: Vec<Frame>,
    /// Frames seen past [`Limits`] and not kept.
    pub over_limit: u64,
    /// Frames the kernel dropped because the socket's buffer was full (`PACKET_STATISTICS`).
    pub dropped: u64,
}

/// What could not be done: a capture ([`Capture::start`]) or a private namespace
/// (`netns::enter_private`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Capturing packets on `lo`.
    Capture,
    /// Entering a private user and network namespace.
    Namespace,
}

/// Why the lesson may not watch as it wished: what could not be done, the call that
/// failed and its error, said in one line (with what would let a capture work).
#[derive(Debug)]
pub struct Refused {
    /// What could not be done.
    pub what: Watch,
    /// The call that failed, as C would spell it.
    pub call: &'static str,
    /// Its error.
    pub err: io::Error,
}

impl Refused {
    /// The refusal of `what` by `call`, once its error is known.
    pub(super) fn by(what: Watch, call: &'static str) -> impl FnOnce(io::Error) -> Refused {
        move |err| Refused { what, call, err }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.what {
            Watch::Capture => "no packet capture on lo",
            Watch::Namespace => "no private network namespace",
        };
        write!(f, "{what}: {} failed: {}", self.call, self.err)?;
        let errno = self.err.raw_os_error();
        match self.what {
            Watch::Capture if matches!(errno, Some(libc::EPERM | libc::EACCES)) => write!(
                f,
                " (capturing needs CAP_NET_RAW: run as root, `setcap cap_net_raw+ep` on the binary, or let it use a user namespace)"
            ),
            // ENOSPC: the count of user namespaces is capped (at 0 where they are off).
            Watch::Namespace if matches!(errno, Some(libc::EPERM | libc::EACCES | libc::ENOSPC)) => write!(
                f,
                " (this system does not let an unprivileged user make user namespaces: see user.max_user_namespaces, kernel.unprivileged_userns_clone and AppArmor's kernel.apparmor_restrict_unprivileged_userns)"
            ),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for Refused {}

/// A capture running on `lo`.
#[derive(Debug)]
pub struct Capture {
    fd: OwnedFd,
    limits: Limits,
}

/// A classic BPF instruction's target: the next one, a label, or one of the two returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    Next,
    Label(u8),
    Keep,
    Drop,
}

/// A classic BPF program with symbolic jumps, resolved by [`Bpf::assemble`].
#[derive(Debug, Default)]
struct Bpf {
    ops: Vec<(u16, To, To, u32)>,
    labels: Vec<(u8, usize)>,
}

const LDH_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
const LDB_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
const LDH_IND: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_IND) as u16;
const LDXB_MSH: u16 = (libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

impl Bpf {
    fn stmt(&mut self, code: u16, k: u32) {
        self.ops.push((code, To::Next, To::Next, k));
    }
    fn jump(&mut self, code: u16, k: u32, yes: To, no: To) {
        self.ops.push((code, yes, no, k));
    }
    fn label(&mut self, l: u8) {
        self.labels.push((l, self.ops.len()));
    }
    /// Jumps to `to` when the loaded port is one of `ports`, else falls through.
    fn any_port(&mut self, ports: &[u16], to: To) {
        for p in ports {
            self.jump(JEQ, u32::from(*p), to, To::Next);
        }
    }

    /// The instructions, ending in "keep `snaplen` bytes" and "keep nothing".
    fn assemble(self, snaplen: u32) -> Option<Vec<libc::sock_filter>> {
        let keep = self.ops.len();
        let drop = keep + 1;
        let at = |to: To, from: usize| -> Option<u8> {
            let target = match to {
                To::Next => from + 1,
                To::Keep => keep,
                To::Drop => drop,
                To::Label(l) => self.labels.iter().find(|(n, _)| *n == l)?.1,
            };
            u8::try_from(target.checked_sub(from + 1)?).ok()
        };
        let mut out = Vec::with_capacity(self.ops.len() + 2);
        for (i, &(code, yes, no, k)) in self.ops.iter().enumerate() {
            let (jt, jf) = if code == JEQ || code == JSET {
                (at(yes, i)?, at(no, i)?)
            } else {
                (0, 0)
            };
            out.push(libc::sock_filter { code, jt, jf, k });
        }
        out.push(libc::sock_filter {
            code: RET,
            jt: 0,
            jf: 0,
            k: snaplen,
        });
        out.push(libc::sock_filter {
            code: RET,
            jt: 0,
            jf: 0,
            k: 0,
        });
        Some(out)
    }
}

/// The filter tcpdump would compile from `tcp and (port P1 or port P2 …)`, or for UDP
/// `(udp and (port P1 or …)) or icmp or icmp6`, for Ethernet frames, IPv4 or IPv6: the
/// `transport`'s packets with one of `ports` at either end (IPv4 fragments after the first
/// are skipped: they carry no ports) and, for UDP, every ICMP packet (an error quoting one
/// of the ports is told from the others in user space). `None` if the program would not
/// fit the 8-bit jumps (over 40 ports).
fn filter(ports: &[u16], transport: Transport, snaplen: u32) -> Option<Vec<libc::sock_filter>> {
    if ports.is_empty() || ports.len() > 40 {
        return None;
    }
    const V4: u8 = 0;
    const V6: u8 = 1;
    const PORTS4: u8 = 2;
    const PORTS6: u8 = 3;
    let (protocol, icmp) = match transport {
        Transport::Tcp => (libc::IPPROTO_TCP as u32, To::Drop),
        Transport::Udp => (libc::IPPROTO_UDP as u32, To::Keep),
    };
    let mut b = Bpf::default();
    b.stmt(LDH_ABS, 12); // the EtherType
    b.jump(JEQ, 0x0800, To::Label(V4), To::Next);
    b.jump(JEQ, 0x86dd, To::Label(V6), To::Drop);
    b.label(V4);
    b.stmt(LDB_ABS, 14 + 9); // the IPv4 protocol
    b.jump(JEQ, 1, icmp, To::Next); // ICMP
    b.jump(JEQ, protocol, To::Label(PORTS4), To::Drop);
    b.label(PORTS4);
    b.stmt(LDH_ABS, 14 + 6); // flags and fragment offset
    b.jump(JSET, 0x1fff, To::Drop, To::Next);
    b.stmt(LDXB_MSH, 14); // X = the IPv4 header's length
    b.stmt(LDH_IND, 14); // source port
    b.any_port(ports, To::Keep);
    b.stmt(LDH_IND, 16); // destination port
    b.any_port(ports, To::Keep);
    b.stmt(RET, 0); // the end of the IPv4 branch: none of ours
    b.label(V6);
    b.stmt(LDB_ABS, 14 + 6); // the IPv6 next header
    b.jump(JEQ, 58, icmp, To::Next); // ICMPv6
    b.jump(JEQ, protocol, To::Label(PORTS6), To::Drop);
    b.label(PORTS6);
    b.stmt(LDH_ABS, 14 + 40);
    b.any_port(ports, To::Keep);
    b.stmt(LDH_ABS, 14 + 42);
    b.any_port(ports, To::Keep);
    b.stmt(RET, 0); // the end of the IPv6 branch: none of ours
    b.assemble(snaplen)
}

fn refused(call: &'static str) -> impl FnOnce(io::Error) -> Refused {
    Refused::by(Watch::Capture, call)
}

/// `setsockopt(2)` of an option whose value is `value`.
fn set_option<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<T>()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `value` points to a live `T` of `len` bytes for the duration of the call,
    // and `fd` is an open socket.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), len) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Capture {
    /// Starts capturing the `transport`'s packets to or from `ports` on `lo` (for UDP,
    /// with the ICMP errors):
    /// `socket(AF_PACKET, SOCK_RAW, 0)` (protocol 0: nothing is delivered yet),
    /// `setsockopt(SO_ATTACH_FILTER)`, `setsockopt(SO_TIMESTAMP)` (each packet's time),
    /// `setsockopt(PACKET_AUXDATA)` (each packet's length before the filter cut it), a larger receive buffer
    /// (`SO_RCVBUFFORCE`, else `SO_RCVBUF`, best effort), `if_nametoindex("lo")`, then
    /// `bind(2)` to `lo` with `ETH_P_ALL`: only then do packets come, already filtered.
    pub fn start(ports: &[u16], transport: Transport, limits: Limits) -> Result<Capture, Refused> {
        let program = filter(ports, transport, limits.snaplen).ok_or_else(|| {
            refused("the packet filter")(io::Error::new(
                io::ErrorKind::InvalidInput,
                "between 1 and 40 ports",
            ))
        })?;
        // SAFETY: socket(2) takes no pointer; a returned descriptor is ours alone.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(refused("socket(AF_PACKET, SOCK_RAW)")(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a descriptor socket(2) just returned, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let prog = libc::sock_fprog {
            len: u16::try_from(program.len())
                .map_err(|_| refused("the packet filter")(io::ErrorKind::InvalidInput.into()))?,
            filter: program.as_ptr().cast_mut(),
        };
        set_option(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
            .map_err(refused("setsockopt(SO_ATTACH_FILTER)"))?;
        set_option(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMP, &1i32)
            .map_err(refused("setsockopt(SO_TIMESTAMP)"))?;
        set_option(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &1i32)
            .map_err(refused("setsockopt(PACKET_AUXDATA)"))?;
        let buffer: i32 = 4 << 20;
        if set_option(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &buffer).is_err() {
            // Without CAP_NET_ADMIN, the size is capped by net.core.rmem_max: still fine.
            let _ = set_option(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &buffer);
        }
        // SAFETY: the name is a NUL-terminated string that outlives the call.
        let index = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
        if index == 0 {
            return Err(refused("if_nametoindex(\"lo\")")(io::Error::last_os_error()));
        }
        // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = i32::try_from(index)
            .map_err(|_| refused("if_nametoindex(\"lo\")")(io::ErrorKind::InvalidData.into()))?;
        // SAFETY: `addr` is a live sockaddr_ll and the length is its size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(refused("bind(lo, ETH_P_ALL)")(io::Error::last_os_error()));
        }
        Ok(Capture { fd, limits })
    }

    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Stops and takes what was captured: `recvmsg(2)` (the `SCM_TIMESTAMP` message
    /// gives each frame's time, `PACKET_AUXDATA` its length before the cut) until nothing more comes
    /// for `settle` (`poll(2)`), then `getsockopt(PACKET_STATISTICS)` for the kernel's
    /// drops, and `close(2)`. Bounded: at most 100,000 receives.
    pub fn finish(self, settle: Duration) -> Captured {
        let mut got = Captured::default();
        let mut kept_bytes = 0usize;
        let mut buf = vec![0u8; self.limits.snaplen.max(64) as usize];
        for _ in 0..100_000 {
            match self.recv(&mut buf) {
                Ok(Some((frame_len, copied, t_us))) => {
                    let keep =
                        got.frames.len() < self.limits.packets && kept_bytes + copied <= self.limits.bytes;
                    if keep {
                        kept_bytes += copied;
                        got.frames.push(Frame {
                            t_us,
                            len: frame_len,
                            data: buf[..copied].to_vec(),
                        });
                    } else {
                        got.over_limit += 1;
                    }
                }
                Ok(None) => {} // our own outgoing copy on lo
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.readable_within(settle) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        got.dropped = self.drops();
        got
    }

    /// `poll(2)` for input, at most `within`.
    fn readable_within(&self, within: Duration) -> bool {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(within.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one live pollfd, count 1.
        unsafe { libc::poll(&mut p, 1, ms) > 0 }
    }

    /// `getsockopt(SOL_PACKET, PACKET_STATISTICS)`: packets the kernel dropped (0 if it
    /// will not say).
    fn drops(&self) -> u64 {
        // SAFETY: tpacket_stats is plain data; all zeroes is valid.
        let mut stats: libc::tpacket_stats = unsafe { zeroed() };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` is live and writable for `len` bytes; `len` is live.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if r == 0 { u64::from(stats.tp_drops) } else { 0 }
    }

    /// One `recvmsg(2)`: the frame's length, the bytes copied and its kernel time;
    /// `None` for a copy on its way out of `lo`.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(u32, usize, u64)>> {
        // SAFETY: sockaddr_ll is plain data; all zeroes is valid.
        let mut from: libc::sockaddr_ll = unsafe { zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // Room for a SCM_TIMESTAMP (a timeval) and a PACKET_AUXDATA, u64-aligned as
        // cmsghdr wants.
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; all zeroes is valid (no name, no control).
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>() as _;
        // SAFETY: every pointer in `msg` points to live, writable memory of the length
        // given beside it, for the duration of the call.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if from.sll_pkttype == libc::PACKET_OUTGOING {
            return Ok(None);
        }
        let copied = (n as usize).min(buf.len());
        let mut frame_len = u32::try_from(copied).unwrap_or(u32::MAX);
        let mut t_us = 0u64;
        // SAFETY: `msg` was filled by recvmsg(2); CMSG_FIRSTHDR / CMSG_NXTHDR walk its
        // control buffer within msg_controllen; a SCM_TIMESTAMP's data is a timeval and a
        // PACKET_AUXDATA's a tpacket_auxdata (read unaligned: the macros promise no
        // alignment for the data).
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::SOL_SOCKET, libc::SCM_TIMESTAMP) => {
                        let tv: libc::timeval = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                        t_us = (tv.tv_sec as u64) * 1_000_000 + tv.tv_usec as u64;
                    }
                    (libc::SOL_PACKET, libc::PACKET_AUXDATA) => {
                        let aux: libc::tpacket_auxdata = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                        frame_len = aux.tp_len;
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok(Some((frame_len, copied, t_us)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::net::{TcpListener, TcpStream, UdpSocket};

    #[test]
    fn the_filter_fits_and_ends_in_its_two_returns() {
        let p = filter(&[80], Transport::Tcp, 256).unwrap();
        let n = p.len();
        assert_eq!((p[n - 2].code, p[n - 2].k), (RET, 256));
        assert_eq!((p[n - 1].code, p[n - 1].k), (RET, 0));
        // Every jump lands inside the program.
        for (i, ins) in p.iter().enumerate() {
            if ins.code == JEQ || ins.code == JSET {
                assert!(i + 1 + usize::from(ins.jt) < n && i + 1 + usize::from(ins.jf) < n);
            }
        }
        assert!(filter(&[], Transport::Tcp, 256).is_none());
        assert!(filter(&[1; 41], Transport::Udp, 256).is_none());
        assert!(filter(&[1; 40], Transport::Udp, 256).is_some());
    }

    /// Captures a TCP exchange and a UDP datagram on the filtered port, and not the
    /// traffic of another port; skips loudly without the privilege.
    #[test]
    fn captures_the_ports_asked_for_and_only_those() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        let cap = match Capture::start(&[port], Transport::Tcp, Limits::default()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIP: captures_the_ports_asked_for_and_only_those: {e}");
                return;
            }
        };
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.send_to(b"elsewhere", other.local_addr().unwrap()).unwrap();
        let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (s, _) = listener.accept().unwrap();
        let client = c.local_addr().unwrap().port();
        drop(c);
        drop(s);
        let got = cap.finish(Duration::from_millis(50));
        // Every frame is TCP (IPv4 protocol 6 or IPv6 next header 6): the datagram to the
        // other port, and any ICMP, were left in the kernel.
        let ipv4 = |f: &&Frame| f.data[12..14] == [0x08, 0x00];
        for f in &got.frames {
            let protocol = if ipv4(&f) { f.data[23] } else { f.data[20] };
            assert_eq!(protocol, 6, "{f:?}");
            assert!(f.t_us > 1_600_000_000_000_000);
        }
        // SYN, SYN-ACK, ACK, then FIN and ACK each way: at least 5 between our two ports
        // (another program's TCP may use the same port number elsewhere: it is let in too).
        let ports = |f: &Frame| {
            (
                u16::from_be_bytes([f.data[34], f.data[35]]),
                u16::from_be_bytes([f.data[36], f.data[37]]),
            )
        };
        let ours = got
            .frames
            .iter()
            .filter(ipv4)
            .filter(|f| ports(f) == (client, port) || ports(f) == (port, client))
            .count();
        assert!(ours >= 5, "{ours} frames of ours in {:?}", got.frames);
        assert_eq!(got.over_limit, 0);
    }

    #[test]
    fn a_refusal_is_one_line_that_says_what_would_let_it_work() {
        let eperm = || io::Error::from_raw_os_error(libc::EPERM);
        let capture = Refused::by(Watch::Capture, "socket(AF_PACKET, SOCK_RAW)")(eperm()).to_string();
        assert!(capture.starts_with("no packet capture on lo: socket(AF_PACKET, SOCK_RAW) failed: "));
        assert!(
            capture.contains("CAP_NET_RAW") && !capture.contains('\n'),
            "{capture}"
        );
        let namespace =
            Refused::by(Watch::Namespace, "unshare(CLONE_NEWUSER | CLONE_NEWNET)")(eperm()).to_string();
        assert!(namespace.starts_with("no private network namespace: unshare("));
        assert!(
            !namespace.contains("CAP_NET_RAW") && !namespace.contains('\n'),
            "{namespace}"
        );
        assert!(namespace.contains("user.max_user_namespaces"), "{namespace}");
        let other =
            Refused::by(Watch::Capture, "bind(lo, ETH_P_ALL)")(io::Error::from_raw_os_error(libc::ENODEV));
        assert!(
            !other.to_string().contains("CAP_NET_RAW") && !other.to_string().contains("see user"),
            "no hint where none helps: {other}"
        );
        let filter = Capture::start(&[], Transport::Tcp, Limits::default())
            .unwrap_err()
            .to_string();
        assert!(
            filter.contains("the packet filter failed: between 1 and 40 ports"),
            "{filter}"
        );
    }

    #[test]
    fn ipv6_datagrams_pass_the_filter_too() {
        let Ok(udp) = UdpSocket::bind("[::1]:0") else {
            eprintln!("SKIP: ipv6_datagrams_pass_the_filter_too: no ::1");
            return;
        };
        let port = udp.local_addr().unwrap().port();
        let cap = match Capture::start(&[port], Transport::Udp, Limits::default()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIP: ipv6_datagrams_pass_the_filter_too: {e}");
                return;
            }
        };
        let sender = UdpSocket::bind("[::1]:0").unwrap();
        sender.send_to(b"six", ("::1", port)).unwrap();
        // Another port of ::1: filtered out in the kernel.
        sender.send_to(b"not ours", sender.local_addr().unwrap()).unwrap();
        let got = cap.finish(Duration::from_millis(50));
        // IPv6 UDP frames (next header 17) and their ports; any other frame is an ICMP
        // message, which the filter lets through for UDP.
        let from = sender.local_addr().unwrap().port();
        let udp: Vec<(u16, u16, u32)> = got
            .frames
            .iter()
            .filter(|f| f.data[12..14] == [0x86, 0xdd] && f.data[20] == 17)
            .map(|f| {
                (
                    u16::from_be_bytes([f.data[54], f.data[55]]),
                    u16::from_be_bytes([f.data[56], f.data[57]]),
                    f.len,
                )
            })
            .collect();
        let others = got.frames.len() - udp.len();
        let icmp = got
            .frames
            .iter()
            .filter(|f| f.data[23] == 1 || f.data[20] == 58)
            .count();
        assert_eq!(others, icmp, "only UDP and ICMP: {:?}", got.frames);
        assert_eq!(
            udp.iter().filter(|u| (u.0, u.1) == (from, port)).count(),
            1,
            "{udp:?}"
        );
        assert!(udp.contains(&(from, port, 14 + 40 + 8 + 3)));
        assert!(
            !udp.contains(&(from, from, 14 + 40 + 8 + 8)),
            "the other port's datagram got in"
        );
    }

    #[test]
    fn frames_past_the_limit_are_counted_not_kept() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let limits = Limits {
            packets: 3,
            ..Limits::default()
        };
        let cap = match Capture::start(&[port], Transport::Udp, limits) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIP: frames_past_the_limit_are_counted_not_kept: {e}");
                return;
            }
        };
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..5 {
            sender.send_to(&[7u8; 1000], ("127.0.0.1", port)).unwrap();
        }
        let got = cap.finish(Duration::from_millis(50));
        // Five datagrams (and maybe another program's ICMP, which the filter lets in).
        assert_eq!(got.frames.len(), 3);
        assert!(got.over_limit >= 2, "{}", got.over_limit);
        // Cut to the snap length; the real length is kept.
        let udp = got.frames.iter().find(|f| f.data[23] == 17).unwrap();
        assert_eq!(udp.data.len(), 256);
        assert_eq!(udp.len, 14 + 20 + 8 + 1000);
    }
}
