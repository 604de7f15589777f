//! What the kernel tells of an exchange, as data: a frame captured on `lo`
//! ([`Frame`], from `sys::capture`, of a [`Transport`]) and a TCP socket's state and queues ([`TcpSocket`],
//! from `sys::sockdiag`). Pure: the calls that fill these in are in `sys`.

use std::net::SocketAddr;

/// The transport protocol of an exchange: what a capture of it keeps (TCP segments; or
/// UDP datagrams and the ICMP errors they cause).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One captured frame: an Ethernet frame as `lo` carries it (zero addresses), cut to the
/// snap length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// When the kernel received it, in µs since the Unix epoch.
    pub t_us: u64,
    /// Its length on the wire (before the cut).
    pub len: u32,
    /// Its first bytes, at most the snap length.
    pub data: Vec<u8>,
}

/// A TCP state as the kernel numbers it (`include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// Connected.
    Established,
    /// A SYN sent, no SYN-ACK yet.
    SynSent,
    /// A SYN received, SYN-ACK sent.
    SynRecv,
    /// Closed first: our FIN sent, not yet acknowledged.
    FinWait1,
    /// Closed first: our FIN acknowledged, the peer's not yet come.
    FinWait2,
    /// Closed first, both FINs done: kept a while (2 MSL) to catch late segments.
    TimeWait,
    /// Closed.
    Close,
    /// The peer closed first; we have not.
    CloseWait,
    /// The peer closed first, then we did: our FIN awaits its acknowledgement.
    LastAck,
    /// Listening.
    Listen,
    /// Both closed at once.
    Closing,
    /// A connection request in the SYN queue.
    NewSynRecv,
}

impl TcpState {
    /// The state numbered `n`, if it is one.
    pub fn from_kernel(n: u8) -> Option<TcpState> {
        use TcpState::*;
        Some(match n {
            1 => Established,
            2 => SynSent,
            3 => SynRecv,
            4 => FinWait1,
            5 => FinWait2,
            6 => TimeWait,
            7 => Close,
            8 => CloseWait,
            9 => LastAck,
            10 => Listen,
            11 => Closing,
            12 => NewSynRecv,
            _ => return None,
        })
    }

    /// Its name as the RFC and `netstat` spell it: `TIME_WAIT`.
    pub fn name(self) -> &'static str {
        use TcpState::*;
        match self {
            Established => "ESTABLISHED",
            SynSent => "SYN_SENT",
            SynRecv => "SYN_RECV",
            FinWait1 => "FIN_WAIT1",
            FinWait2 => "FIN_WAIT2",
            TimeWait => "TIME_WAIT",
            Close => "CLOSE",
            CloseWait => "CLOSE_WAIT",
            LastAck => "LAST_ACK",
            Listen => "LISTEN",
            Closing => "CLOSING",
            NewSynRecv => "NEW_SYN_RECV",
        }
    }
}

/// One TCP socket as the kernel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocket {
    /// Its state.
    pub state: TcpState,
    /// Its own address.
    pub local: SocketAddr,
    /// Its peer's (`0.0.0.0:0` or `[::]:0` for a listener).
    pub peer: SocketAddr,
    /// The receive queue: bytes not yet read, or, listening, connections not yet accepted.
    pub rqueue: u32,
    /// The send queue: bytes not yet acknowledged, or, listening, the backlog (netlink
    /// only: `/proc/net/tcp` shows 0).
    pub wqueue: u32,
    /// The socket's inode: what `/proc/PID/fd/N` links to (`socket:[INODE]`), so the
    /// process holding it can be found; 0 for a socket no descriptor holds (TIME_WAIT).
    pub inode: u64,
}
