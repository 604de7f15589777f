//! Watching an exchange from the kernel's side while a scenario runs it: its packets
//! captured on `lo` (`hello_proto::sys::capture`), its TCP sockets sampled
//! (`hello_proto::sys::sockdiag`) as the server comes up, where the scenario knows a state
//! to look at, and once it is over, put together as a [`Observed`]; and the pcap files of
//! a run. Capture never holds up or fails a
//! scenario: where it cannot start, the exchange goes on without packets and says why.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use hello_proto::kernel::{TcpSocket, TcpState, Transport};
use hello_proto::sys::capture::{Capture, Limits, Refused};
use hello_proto::sys::sockdiag;

use crate::packets;
use crate::pcap;
use crate::scenario::Part;
use crate::timeline::Sample;
use crate::wire_view::{Note, Observed};

/// How long the capture waits, at the end of an exchange, for packets still on their
/// way (loopback delivers them within microseconds; this is slack for a loaded machine).
const SETTLE: Duration = Duration::from_millis(20);

/// Whether a run captures packets, and within what limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capturing {
    /// Capture each exchange's packets.
    On(Limits),
    /// Do not (asked so, or not possible here).
    Off,
}

/// A capture that keeps the kernel's packet clock running for a whole run.
///
/// The kernel stamps packets as they arrive only while some socket asks for times, and
/// turns stamping on a moment (a deferred work item) after the first one asks; until
/// then a packet is stamped when it is read, late and out of order. Holding one capture
/// open from before the first exchange to after the last keeps every exchange's times
/// the arrival times.
#[must_use = "stamping stops when it is dropped"]
pub struct Clock {
    _capture: Capture,
}

/// Whether this process may capture on `lo`: a capture started, kept as the run's
/// [`Clock`].
pub fn probe() -> Result<Clock, Refused> {
    let limits = Limits {
        packets: 0,
        bytes: 0,
        ..Limits::default()
    };
    // Port 9 (discard): nothing of the demo's goes there.
    Capture::start(&[9], Transport::Udp, limits).map(|c| Clock { _capture: c })
}

/// An exchange being watched.
pub struct Watching {
    at: SocketAddr,
    transport: Transport,
    capture: Option<Capture>,
    /// The connections on the port before the exchange (an earlier one's TIME_WAIT):
    /// not this exchange's.
    before: Vec<(SocketAddr, SocketAddr)>,
    samples: Vec<Sample>,
    notes: Vec<Note>,
}

/// Now, in µs since the Unix epoch: the trace's and the capture's clock.
fn now_us() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

impl Watching {
    /// Starts watching the exchange over `transport` whose server is (or would be) at
    /// `at` (a TCP one samples its sockets too).
    pub fn start(at: SocketAddr, transport: Transport, capturing: Capturing) -> Watching {
        let port = at.port();
        let tcp = transport == Transport::Tcp;
        let mut notes = Vec::new();
        let capture = match capturing {
            Capturing::On(limits) => match Capture::start(&[port], transport, limits) {
                Ok(c) => Some(c),
                Err(e) => {
                    notes.push(Note::NoCapture(e.to_string()));
                    None
                }
            },
            Capturing::Off => None,
        };
        let mut before = Vec::new();
        let mut samples = Vec::new();
        if tcp {
            match sockdiag::tcp_sockets(&[port]) {
                Ok((s, _)) => {
                    let t_us = now_us();
                    before = s
                        .iter()
                        .filter(|s| s.state != TcpState::Listen)
                        .map(|s| (s.local, s.peer))
                        .collect();
                    let listening = s
                        .into_iter()
                        .filter(|s| s.state == TcpState::Listen && s.local == at)
                        .collect();
                    samples.push(Sample {
                        t_us,
                        sockets: listening,
                    });
                }
                Err(e) => notes.push(Note::NotSampled(e.to_string())),
            }
        }
        Watching {
            at,
            transport,
            capture,
            before,
            samples,
            notes,
        }
    }

    /// Samples the exchange's TCP sockets now, keeps the sample and returns it (`None`
    /// where they cannot be sampled: said once, in the notes).
    pub fn sample(&mut self) -> Option<Sample> {
        match sockdiag::tcp_sockets(&[self.at.port()]) {
            // Another program's sockets may have the same port number elsewhere, and
            // an earlier connection's may linger on it (TIME_WAIT, 60 s).
            Ok((s, _)) => {
                let t_us = now_us();
                let ours = |s: &TcpSocket| {
                    (s.local == self.at || s.peer == self.at)
                        && (s.state == TcpState::Listen || !self.before.contains(&(s.local, s.peer)))
                };
                let sample = Sample {
                    t_us,
                    sockets: s.into_iter().filter(ours).collect(),
                };
                self.samples.push(sample.clone());
                Some(sample)
            }
            Err(e) => {
                let note = Note::NotSampled(e.to_string());
                if !self.notes.contains(&note) {
                    self.notes.push(note);
                }
                None
            }
        }
    }

    /// Stops: the packets kept (those of the exchange's port, taken apart) and the TCP
    /// sockets left.
    pub fn finish(mut self) -> Observed {
        if self.transport == Transport::Tcp {
            self.sample();
        }
        let mut observed = Observed {
            port: self.at.port(),
            captured: self.capture.is_some(),
            notes: self.notes,
            samples: self.samples,
            ..Observed::default()
        };
        if let Some(c) = self.capture {
            let limits = c.limits();
            let got = c.finish(SETTLE);
            if got.over_limit > 0 || got.dropped > 0 {
                observed.notes.push(Note::Lost {
                    over: got.over_limit,
                    dropped: got.dropped,
                    packets: limits.packets,
                    bytes: limits.bytes,
                });
            }
            let mut late = 0;
            for f in got.frames {
                if observed.frames.last().is_some_and(|p| f.t_us < p.t_us) {
                    late += 1;
                }
                // The filter lets every ICMP message through for UDP, and another
                // program's packets on the same port number: keep this exchange's.
                if let Some(p) =
                    packets::parse(f.t_us, &f.data).filter(|p| p.concerns(self.at, self.transport))
                {
                    observed.packets.push(p);
                    observed.frames.push(f);
                }
            }
            if late > 0 {
                observed.notes.push(Note::Late(late));
            }
        }
        observed
    }
}

/// Writes `SLUG.pcap` into `dir` for each part whose packets were captured; the paths
/// written.
pub fn write_pcaps(dir: &Path, parts: &[Part], limits: &Limits) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for p in parts {
        let Some(observed) = p.observed.as_ref().filter(|w| w.captured) else {
            continue;
        };
        let path = dir.join(format!("{}.pcap", p.slug));
        std::fs::write(&path, pcap::file(&observed.frames, limits.snaplen))
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
