//! The timeline's tests' traces, built with the programs' own record writer: the one
//! exchange the lesson's other tests draw, and the exchanges (echo, fork, epoll) whose
//! orders the timeline's unit tests check.

#![cfg(test)]

use std::io;
use std::net::SocketAddr;

use hello_proto::error::Step;
use hello_proto::kernel::{TcpSocket, TcpState};
use hello_proto::trace::record::Record;
use hello_proto::trace::{Event, Family, Kind, Lang, Readiness};

use super::{At, Kernel, Lane, Sample, Side, Timeline, build, check};
use crate::line::record;
use crate::packets::{Carried, Packet};

/// The tests' exchange: a client connects, the server accepts and writes `data`, the
/// client reads it; each record made by the programs' own writer, explained in `lang`.
pub(crate) fn one_exchange(lang: Lang, data: &[u8]) -> Vec<Lane> {
    let record = |who: &str, t, took, e: Event<'_>| Record::of(who, lang, t, took, &e);
    let socket = Event::Socket {
        family: Family::Inet,
        kind: Kind::Stream,
        fd: 3,
    };
    let connect = Event::Connect {
        fd: 3,
        addr: addr(9190),
        kind: Kind::Stream,
    };
    let accept = Event::Accept {
        listener: 3,
        fd: 4,
        peer: addr(5555),
    };
    vec![
        Lane {
            label: "client".into(),
            side: Side::Client,
            calls: vec![
                record("client", 100, 0, socket),
                record("client", 200, 10, connect),
                record(
                    "client",
                    300,
                    0,
                    Event::Ephemeral {
                        fd: 3,
                        addr: addr(5555),
                    },
                ),
                record("client", 400, 100, Event::Read { fd: 3, data }),
            ],
        },
        Lane {
            label: "server".into(),
            side: Side::Server,
            calls: vec![
                record("server", 50, 200, accept),
                record("server", 450, 2, Event::Write { fd: 4, data }),
            ],
        },
    ]
}

/// A TCP segment of [`one_exchange`] (client port 5555, server 9190), captured at `t_us`.
pub(crate) fn segment(t_us: u64, up: bool, flags: u8, seq: u32, len: u32) -> Packet {
    let (c, s) = (addr(5555), addr(9190));
    let (src, dst) = if up { (c, s) } else { (s, c) };
    Packet {
        t_us,
        src,
        dst,
        carried: Carried::Tcp { flags, seq, ack: 0 },
        len,
    }
}

/// [`one_exchange`]'s packets: the handshake while the client's connect() (200, +10)
/// runs and before the server's accept() returns (250), the 3 bytes after the server's
/// write() began (450) and before the client's read() returned (500); then a sample of
/// the sockets: the server's in TIME_WAIT.
pub(crate) fn one_exchange_kernel() -> Kernel {
    use crate::packets::flag::{ACK, PSH, SYN};
    Kernel {
        port: 9190,
        packets: Some(vec![
            segment(203, true, SYN, 1000, 0),
            segment(204, false, SYN | ACK, 7000, 0),
            segment(205, true, ACK, 1001, 0),
            segment(455, false, PSH | ACK, 7001, 3),
            segment(456, true, ACK, 1001, 0),
        ]),
        samples: vec![Sample {
            t_us: 600,
            sockets: vec![TcpSocket {
                state: TcpState::TimeWait,
                local: addr(9190),
                peer: addr(5555),
                rqueue: 0,
                wqueue: 0,
                inode: 0,
            }],
        }],
    }
}

/// `127.0.0.1:port`.
pub(super) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub(super) fn tcp(fd: i32) -> Event<'static> {
    Event::Socket {
        family: Family::Inet,
        kind: Kind::Stream,
        fd,
    }
}

pub(super) fn udp(fd: i32) -> Event<'static> {
    Event::Socket {
        family: Family::Inet,
        kind: Kind::Dgram,
        fd,
    }
}

pub(super) fn connect(fd: i32, port: u16) -> Event<'static> {
    Event::Connect {
        fd,
        addr: addr(port),
        kind: Kind::Stream,
    }
}

pub(super) fn accept(listener: i32, fd: i32, peer: u16) -> Event<'static> {
    Event::Accept {
        listener,
        fd,
        peer: addr(peer),
    }
}

pub(super) fn ephemeral(fd: i32, port: u16) -> Event<'static> {
    Event::Ephemeral { fd, addr: addr(port) }
}

/// A client's first calls: `socket()` at `at`, `connect()` to port 9190 made 10 µs
/// later and taking `took`, then `getsockname()` naming its port 5555.
fn connected<'a>(at: u64, took: u64) -> Vec<(u64, u64, Event<'a>)> {
    vec![
        (at, 0, tcp(3)),
        (at + 10, took, connect(3, 9190)),
        (at + 15 + took, 0, ephemeral(3, 5555)),
    ]
}

/// The client's lane: [`connected`] at `at` with a `connect()` taking `took`, then
/// `rest`.
pub(super) fn client_lane(at: u64, took: u64, rest: Vec<(u64, u64, Event<'_>)>) -> Lane {
    let mut calls = connected(at, took);
    calls.extend(rest);
    lane_of("client", Side::Client, "client", calls)
}

/// A lane of `(start µs, took µs, event)` made by `who`.
pub(super) fn lane_of(label: &str, side: Side, who: &str, calls: Vec<(u64, u64, Event<'_>)>) -> Lane {
    Lane {
        label: label.to_string(),
        side,
        calls: calls
            .into_iter()
            .map(|(t, took, e)| record(who, t, took, e))
            .collect(),
    }
}

/// One client and the server, ordered and checked.
pub(super) fn checked(client: Lane, server: Lane) -> Timeline {
    let t = build(vec![client, server]).unwrap();
    check(&t).unwrap();
    t
}

/// Where the call whose C rendering starts with `c` (made by `who`) was put.
pub(super) fn pos(t: &Timeline, who: &str, c: &str) -> usize {
    t.rows
        .iter()
        .position(|&(l, i)| t.lanes[l].calls[i].c.starts_with(c) && t.lanes[l].calls[i].who == who)
        .unwrap_or_else(|| panic!("no {who} {c}"))
}

/// An echo exchange as it was once printed wrong: the server's read() returned
/// before the client's write() did, and the server's accept() before the client's
/// connect() (times are when each call was made, and how long it took).
pub(super) fn racy() -> Vec<Lane> {
    let server = lane_of(
        "server",
        Side::Server,
        "server",
        vec![
            (100, 0, tcp(3)),
            (
                110,
                0,
                Event::Bind {
                    fd: 3,
                    addr: addr(9190),
                },
            ),
            (120, 0, Event::Listen { fd: 3, backlog: 4096 }),
            (130, 900, accept(3, 4, 5555)),
            (
                1040,
                300,
                Event::Read {
                    fd: 4,
                    data: b"hello\0",
                },
            ),
            (
                1350,
                5,
                Event::SendMore {
                    fd: 4,
                    data: b"5 : hello\0",
                },
            ),
            (1360, 1, Event::ShutdownWrite { fd: 4 }),
            (1370, 2, Event::Read { fd: 4, data: b"" }),
            (1380, 1, Event::Close { fd: 4 }),
        ],
    );
    let client = client_lane(
        890,
        200,
        vec![
            (
                1200,
                300,
                Event::Write {
                    fd: 3,
                    data: b"hello\0",
                },
            ),
            (1340, 1, Event::ShutdownWrite { fd: 3 }),
            (
                1345,
                20,
                Event::Read {
                    fd: 3,
                    data: b"5 : hello\0",
                },
            ),
            (1390, 1, Event::Read { fd: 3, data: b"" }),
            (1400, 1, Event::Close { fd: 3 }),
        ],
    );
    vec![client, server]
}

/// A fork model exchange: the parent accepts, forks and closes its copy; the child
/// serves and exits; the parent's accept() waiting for the next client is
/// interrupted by the child's SIGCHLD.
pub(super) fn forked() -> (Lane, Lane) {
    let server = Lane {
        label: "server".into(),
        side: Side::Server,
        calls: vec![
            record("server", 100, 100, accept(3, 4, 5555)),
            record(
                "server",
                210,
                50,
                Event::Fork {
                    child: 4242,
                    in_child: false,
                },
            ),
            record(
                "server",
                270,
                1,
                Event::CloseCopy {
                    fd: 4,
                    in_child: false,
                },
            ),
            record(
                "server[4242]",
                250,
                0,
                Event::Fork {
                    child: 4242,
                    in_child: true,
                },
            ),
            record("server[4242]", 300, 2, Event::SendMore { fd: 4, data: b"hi\0" }),
            record("server[4242]", 310, 2, Event::ShutdownWrite { fd: 4 }),
            record("server[4242]", 400, 1, Event::Exit { code: 0 }),
            // Made at 280, before the child's exit at 400; returned at 1280, after.
            record(
                "server",
                280,
                1000,
                Event::Failed {
                    step: Step::Accept,
                    fd: Some(3),
                    err: &io::Error::from_raw_os_error(libc::EINTR),
                },
            ),
        ],
    };
    let client = client_lane(
        50,
        30,
        vec![
            (97, 300, Event::Read { fd: 3, data: b"hi\0" }),
            (400, 3, Event::Read { fd: 3, data: b"" }),
        ],
    );
    (client, server)
}

/// An epoll server: each epoll_wait() is made before what it will report (the
/// client's connect, then its write) and returns after it.
pub(super) fn epoll_lanes() -> Vec<Lane> {
    let readable = Readiness {
        readable: true,
        ..Readiness::default()
    };
    let listener_ready = [(3, readable)];
    let client_ready = [(5, readable)];
    let wait = |ready| Event::EpollWait {
        epfd: 4,
        max: 64,
        timeout_ms: -1,
        ready,
    };
    let server = Lane {
        label: "server".into(),
        side: Side::Server,
        calls: vec![
            record("server", 10, 0, tcp(3)),
            record(
                "server",
                20,
                0,
                Event::Bind {
                    fd: 3,
                    addr: addr(9190),
                },
            ),
            record("server", 30, 0, Event::Listen { fd: 3, backlog: 4096 }),
            record("server", 40, 0, Event::EpollCreate { epfd: 4 }),
            record("server", 100, 150, wait(&listener_ready)),
            record("server", 260, 5, accept(3, 5, 5555)),
            record("server", 270, 200, wait(&client_ready)),
            record("server", 480, 5, Event::Read { fd: 5, data: b"hi\0" }),
        ],
    };
    let client = client_lane(190, 10, vec![(400, 2, Event::Write { fd: 3, data: b"hi\0" })]);
    vec![client, server]
}

/// `t` with its calls in the order an earlier demo drew them, by the time each returned:
/// wrong wherever a call returned before the call that caused it (a `read()` before the
/// `write()` of its bytes), right where the returns happen to follow the causes.
pub(super) fn by_return_time(t: &Timeline) -> Timeline {
    let mut rows: Vec<At> = t.rows.clone();
    rows.sort_by_key(|&(l, i)| t.lanes[l].calls[i].end());
    Timeline { rows, ..t.clone() }
}
