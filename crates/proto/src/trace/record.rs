//! `--trace-format json`: each event as one JSON object on one line (JSON Lines), with
//! the call's values as fields a program can read (docs/contract.md#the-trace-as-json).
//! The same [`Record`] serves the programs, which write it, and the lesson, which reads
//! it back: one definition of the schema.
//!
//! Pure: values in, a line out. Every string goes through serde_json, so a hostile
//! peer's bytes (already shown as a C literal in `c`) cannot break the line.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::call::errno_name;
use super::{Event, Kind, Lang, Timeout, call_name, explain, textbook};

/// One traced call, as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When the call was made: microseconds since the Unix epoch.
    pub t_us: u64,
    /// How long it took, in microseconds.
    pub dur_us: u64,
    /// Who made it: `client`, `server`, a worker `server#2`, a fork model child
    /// `server[4242]`.
    pub who: String,
    /// The call's name: `read`, `epoll_wait`, `IORING_OP_RECV` (a note that is not a
    /// call, such as `PROXY` or `drain`, by its first word).
    pub call: String,
    /// The call as C would spell it, with its values: the text trace's middle column.
    pub c: String,
    /// The descriptor the call acts on (its first argument), or the one it made
    /// (`socket()`, `epoll_create1()`); `null` for a call on none.
    pub fd: Option<i32>,
    /// What the call returned: a descriptor, a byte count, 0, a pid; -1 when it failed.
    /// `null` for a call that does not return (`_exit`) or a note that is no call.
    pub ret: Option<i64>,
    /// The errno of a failed call (`"EAGAIN"`), else `null`.
    pub errno: Option<String>,
    /// Bytes sent or received (0: end of stream), for a call that moves data.
    pub bytes: Option<u64>,
    /// The socket's own address the call shows (`bind`, `getsockname`), `"IP:PORT"`.
    pub local: Option<SocketAddr>,
    /// The other side's address the call shows (`connect`, `accept`, `sendto`,
    /// `recvfrom`, a PROXY header's client), `"IP:PORT"`.
    pub peer: Option<SocketAddr>,
    /// `"tcp"` or `"udp"`, where the call says (`socket`, `connect`).
    pub proto: Option<String>,
    /// The option `setsockopt()` sets (`"SO_LINGER"`), else `null`.
    pub opt: Option<String>,
    /// A readiness report's descriptors ready to read, accept or see end of stream
    /// (`select`, `poll`, `epoll_wait`); `null` for any other call.
    pub readable: Option<Vec<i32>>,
    /// A readiness report's descriptors ready to write.
    pub writable: Option<Vec<i32>>,
    /// `"textbook"`: the textbook's program makes this call; `"added"`: real software
    /// adds it (the same in both languages).
    pub mark: String,
    /// The explanation, in `--lang`.
    pub text: String,
    /// With `--textbook`: the line of the textbook's C program that makes this call
    /// (`write(clnt_sock, message, sizeof(message));`); `null` otherwise (and in the
    /// records of programs older than the field).
    #[serde(default)]
    pub src: Option<String>,
}

impl Record {
    /// The record of `event`, made at `t_us` and lasting `dur_us`, by `who`.
    pub fn of(who: &str, lang: Lang, t_us: u64, dur_us: u64, event: &Event<'_>) -> Record {
        let mut r = Record {
            t_us,
            dur_us,
            who: who.to_string(),
            call: call_name(event),
            c: super::call(event),
            fd: None,
            ret: None,
            errno: None,
            bytes: None,
            local: None,
            peer: None,
            proto: None,
            opt: None,
            readable: None,
            writable: None,
            mark: if textbook(event) { "textbook" } else { "added" }.to_string(),
            text: explain(event, lang),
            src: None,
        };
        r.fill(event);
        r
    }

    /// When the call returned: microseconds since the Unix epoch.
    pub fn end(&self) -> u64 {
        self.t_us.saturating_add(self.dur_us)
    }

    /// Whether the textbook's program makes this call (`mark` is `textbook`).
    pub fn textbook(&self) -> bool {
        self.mark == "textbook"
    }

    /// The record as one line of JSON Lines, ending in `\n`.
    pub fn line(&self) -> String {
        // A struct of plain fields always serializes; the fallback is never taken.
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Reads one line back; `None` for a line that is no record (an error line, the
    /// count of `--trace textbook`).
    pub fn parse(line: &str) -> Option<Record> {
        serde_json::from_str(line.trim_end()).ok()
    }

    /// A call on `fd` that returned `ret`.
    fn on(&mut self, fd: i32, ret: i64) {
        self.fd = Some(fd);
        self.ret = Some(ret);
    }

    /// A call on `fd` that failed with `code`.
    fn failed(&mut self, fd: Option<i32>, code: Option<i32>) {
        self.fd = fd;
        self.ret = Some(-1);
        self.errno = code.map(errno_name);
    }

    /// A call on `fd` that moved `n` bytes.
    fn moved(&mut self, fd: i32, n: usize) {
        self.on(fd, n as i64);
        self.bytes = Some(n as u64);
    }

    fn option(&mut self, fd: i32, name: &str) {
        self.on(fd, 0);
        self.opt = Some(name.to_string());
    }

    /// The fields only some calls have, from the event's own values.
    fn fill(&mut self, event: &Event<'_>) {
        let proto = |kind: &Kind| {
            Some(match kind {
                Kind::Stream => "tcp".to_string(),
                Kind::Dgram => "udp".to_string(),
            })
        };
        match event {
            Event::Socket { kind, fd, .. } => {
                self.on(*fd, i64::from(*fd));
                self.proto = proto(kind);
            }
            Event::ReuseAddr { fd, kind } => {
                self.option(*fd, "SO_REUSEADDR");
                self.proto = proto(kind);
            }
            Event::ReusePort { fd } => self.option(*fd, "SO_REUSEPORT"),
            Event::RecvBuffer { fd, .. } => self.option(*fd, "SO_RCVBUF"),
            Event::DualStack { fd } => self.option(*fd, "IPV6_V6ONLY"),
            Event::AcceptTimeout { fd, .. } => self.option(*fd, "SO_RCVTIMEO"),
            Event::Linger0 { fd } => self.option(*fd, "SO_LINGER"),
            Event::SocketTimeout { fd, which, .. } => self.option(
                *fd,
                match which {
                    Timeout::Receive => "SO_RCVTIMEO",
                    Timeout::Send => "SO_SNDTIMEO",
                },
            ),
            Event::DupListener { fd, copy } => self.on(*fd, i64::from(*copy)),
            Event::Bind { fd, addr }
            | Event::Activated { fd, addr }
            | Event::BoundPort { fd, addr }
            | Event::Ephemeral { fd, addr }
            | Event::BoundBySendto { fd, addr } => {
                self.on(*fd, 0);
                self.local = Some(*addr);
            }
            Event::Listen { fd, .. }
            | Event::StopListening { fd }
            | Event::CloseCopy { fd, .. }
            | Event::ShutdownWrite { fd }
            | Event::Close { fd }
            | Event::Disconnect { fd }
            | Event::ShutdownBoth { fd }
            | Event::NonBlocking { fd, .. }
            | Event::Thread { fd, .. } => self.on(*fd, 0),
            Event::Draining { .. } | Event::Drained | Event::Exit { .. } => {}
            Event::Select {
                readable, writable, ..
            } => {
                self.ret = Some((readable.len() + writable.len()) as i64);
                self.readable = Some(readable.to_vec());
                self.writable = Some(writable.to_vec());
            }
            Event::Fork { child, in_child } => {
                self.ret = Some(if *in_child { 0 } else { i64::from(*child) });
            }
            Event::Waitpid { pid, .. } => self.ret = Some(i64::from(*pid)),
            Event::ProxyHeader { fd, addresses, .. } => {
                self.fd = Some(*fd);
                if let Some((src, dst)) = addresses {
                    self.peer = Some(*src);
                    self.local = Some(*dst);
                }
            }
            Event::Accept { listener, fd, peer } => {
                self.on(*listener, i64::from(*fd));
                self.peer = Some(*peer);
                self.proto = Some("tcp".to_string());
            }
            Event::Connect { fd, addr, kind } => {
                self.on(*fd, 0);
                self.peer = Some(*addr);
                self.proto = proto(kind);
            }
            Event::Read { fd, data } | Event::Write { fd, data } | Event::SendMore { fd, data } => {
                self.moved(*fd, data.len())
            }
            Event::Unread { fd, data: None } => self.failed(Some(*fd), Some(libc::EAGAIN)),
            Event::Unread { fd, data: Some(d) } => self.moved(*fd, d.len()),
            Event::SendTo { fd, peer, data } | Event::RecvFrom { fd, peer, data } => {
                self.moved(*fd, data.len());
                self.peer = Some(*peer);
            }
            // A batch: its result is how many datagrams, `bytes` all of theirs, and `peer`
            // the one sender or destination when the batch held one datagram.
            Event::RecvMmsg { fd, got: batch, .. } | Event::SendMmsg { fd, sent: batch } => {
                self.on(*fd, batch.len() as i64);
                self.bytes = Some(batch.iter().map(|d| d.data.len() as u64).sum());
                if let [one] = batch {
                    self.peer = Some(one.peer);
                }
            }
            Event::EpollCreate { epfd } => self.on(*epfd, i64::from(*epfd)),
            Event::EpollAdd { epfd, .. } | Event::EpollDel { epfd, .. } => self.on(*epfd, 0),
            Event::EpollWait { epfd, ready, .. } => {
                self.on(*epfd, ready.len() as i64);
                let fds = |want: fn(&super::Readiness) -> bool| {
                    ready.iter().filter(|(_, r)| want(r)).map(|(fd, _)| *fd).collect()
                };
                self.readable = Some(fds(|r| r.readable || r.hangup || r.error));
                self.writable = Some(fds(|r| r.writable));
            }
            Event::Eventfd { fd, .. } | Event::UringSetup { fd, .. } => self.on(*fd, i64::from(*fd)),
            Event::PollListener { fd, ready, .. } => {
                self.on(*fd, i64::from(*ready));
                self.readable = Some(if *ready { vec![*fd] } else { Vec::new() });
                self.writable = Some(Vec::new());
            }
            Event::AcceptEmpty { listener, .. } | Event::IdleRepeats { listener, .. } => {
                self.failed(Some(*listener), Some(libc::EAGAIN))
            }
            Event::PeerName { fd, addr } => {
                self.on(*fd, 0);
                self.peer = Some(*addr);
            }
            Event::UringEnter {
                fd,
                submitted,
                timed_out,
                ..
            } => {
                if *timed_out && *submitted == 0 {
                    self.failed(Some(*fd), Some(libc::ETIME));
                } else {
                    self.on(*fd, *submitted as i64);
                }
            }
            Event::UringDone {
                fd,
                result,
                data,
                peer,
                ..
            } => {
                if *result < 0 {
                    self.failed(Some(*fd), Some(-*result));
                } else {
                    self.on(*fd, i64::from(*result));
                    self.bytes = data.map(|d| d.len() as u64);
                    self.peer = *peer;
                }
            }
            Event::Failed { fd, err, .. } => self.failed(*fd, err.raw_os_error()),
            Event::FailedAt { step, fd, addr, err } => {
                self.failed(Some(*fd), err.raw_os_error());
                if *step == crate::error::Step::Bind {
                    self.local = Some(*addr);
                } else {
                    self.peer = Some(*addr);
                }
            }
        }
    }
}

/// With `--trace textbook --trace-format json`, the closing count of the calls left out,
/// as one JSON object: `{"who":"server","left_out":{"recv":1},"text":"…"}`.
pub fn left_out(who: &str, counts: &std::collections::BTreeMap<String, u64>, text: &str) -> String {
    let mut s = serde_json::json!({
        "who": who,
        "left_out": counts,
        "text": text.trim_end(),
    })
    .to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn record(event: &Event<'_>) -> Record {
        Record::of("server", Lang::En, 1_700_000_000_000_000, 52, event)
    }

    #[test]
    fn a_record_has_the_calls_values_and_reads_back() {
        let peer: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let r = record(&Event::Accept {
            listener: 3,
            fd: 4,
            peer,
        });
        assert_eq!(
            (r.call.as_str(), r.fd, r.ret, r.peer, r.mark.as_str()),
            ("accept", Some(3), Some(4), Some(peer), "textbook")
        );
        assert_eq!(r.c, "accept(3) = 4, peer 127.0.0.1:5555");
        let line = r.line();
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["peer"], "127.0.0.1:5555");
        assert_eq!(v["errno"], serde_json::Value::Null);
        assert_eq!(v["t_us"], 1_700_000_000_000_000u64);
        assert_eq!(Record::parse(&line), Some(r));
        assert_eq!(Record::parse("hello-client: connect() error: x"), None);
    }

    #[test]
    fn failures_name_their_errno_and_a_read_its_bytes() {
        let err = io::Error::from_raw_os_error(libc::ECONNRESET);
        let r = record(&Event::Failed {
            step: crate::error::Step::Read,
            fd: Some(3),
            err: &err,
        });
        assert_eq!(
            (r.call.as_str(), r.ret, r.errno.as_deref()),
            ("read", Some(-1), Some("ECONNRESET"))
        );
        let r = record(&Event::Unread { fd: 4, data: None });
        assert_eq!(
            (r.ret, r.errno.as_deref(), r.bytes),
            (Some(-1), Some("EAGAIN"), None)
        );
        let r = record(&Event::Read { fd: 4, data: b"" });
        assert_eq!((r.ret, r.bytes), (Some(0), Some(0)));
        let r = record(&Event::Linger0 { fd: 4 });
        assert_eq!(r.opt.as_deref(), Some("SO_LINGER"));
    }

    #[test]
    fn readiness_lists_the_ready_descriptors() {
        let ready = [
            (
                5,
                super::super::Readiness {
                    readable: true,
                    ..Default::default()
                },
            ),
            (
                6,
                super::super::Readiness {
                    writable: true,
                    ..Default::default()
                },
            ),
        ];
        let r = record(&Event::EpollWait {
            epfd: 4,
            max: 64,
            timeout_ms: -1,
            ready: &ready,
        });
        assert_eq!(
            (r.readable, r.writable, r.ret),
            (Some(vec![5]), Some(vec![6]), Some(2))
        );
    }

    /// A hostile peer's bytes (quotes, backslashes, newlines, a right-to-left override,
    /// NUL, invalid UTF-8) stay inside one valid JSON line, in both languages.
    #[test]
    fn hostile_bytes_stay_one_valid_line() {
        let hostile = "\"\\\n\u{202e}\0"
            .as_bytes()
            .iter()
            .copied()
            .chain([0xff, b'}', b'\r'])
            .collect::<Vec<u8>>();
        let peer: SocketAddr = "[::1]:9".parse().unwrap();
        for lang in [Lang::En, Lang::Ko] {
            for event in [
                Event::Read {
                    fd: 4,
                    data: &hostile,
                },
                Event::Write {
                    fd: 4,
                    data: &hostile,
                },
                Event::RecvFrom {
                    fd: 4,
                    peer,
                    data: &hostile,
                },
            ] {
                let line = Record::of("server[4242]", lang, 1, 2, &event).line();
                assert_eq!(line.matches('\n').count(), 1, "{line}");
                assert!(!line.contains('\r') && !line.contains('\0'), "{line:?}");
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                assert_eq!(v["who"], "server[4242]");
                let c = v["c"].as_str().unwrap();
                assert!(c.contains(r#""\"\\\n"#), "the C literal escapes them: {c}");
                assert!(c.contains("\\xff"), "{c}");
            }
        }
        let counts = std::collections::BTreeMap::from([("recv\n\"".to_string(), 2)]);
        let line = left_out("server", &counts, "left out\n");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["left_out"]["recv\n\""], 2);
    }
}
