//! What each call of a lane does to a connection ([`Sem`]): the socket behind each
//! descriptor at each call (descriptors are reused, and a fork model child starts with a
//! copy of its parent's table), what each readiness report found ready ([`Wake`]), and
//! which child exits a signal's EINTR and a `waitpid()` come after.

use std::collections::HashMap;

use hello_proto::trace::record::Record;

use super::{Dir, Lane, Sem, Side, Wake};
use crate::line::{Act, act};

/// A socket of one process, as the calls on its descriptor reveal it.
#[derive(Debug, Default, Clone, Copy)]
struct Socket {
    udp: bool,
    /// TCP: the client's port (the connection's name); UDP: its own port.
    port: Option<u16>,
    /// The last `setsockopt(SO_LINGER 0)`: the close sends RST, not FIN.
    reset: bool,
    /// `listen()` was called on it.
    listening: bool,
}

/// Whether `earlier`, a call its process traced before `call`, comes before it: it had
/// returned when `call` began. (One thread's calls never overlap; calls of one process
/// that do are its threads', which the trace does not tell apart.)
pub(super) fn before_in_process(earlier: &Record, call: &Record) -> bool {
    earlier.end() <= call.t_us
}

/// The process a call's `who` names a child of: `server` for `server[4242]`.
pub(super) fn parent_of(who: &str) -> Option<&str> {
    who.strip_suffix(']')
        .and_then(|w| w.rsplit_once('['))
        .map(|(parent, _)| parent)
}

/// Works out what each call of a lane means: which socket each descriptor is at each
/// call (descriptors are reused after `close()`, and a fork model child starts with a
/// copy of its parent's), then each socket's port; and what each readiness report found.
pub(super) fn meanings(lane: &Lane) -> (Vec<Sem>, Vec<Vec<Wake>>) {
    let acts: Vec<Act> = lane.calls.iter().map(act).collect();
    let mut sockets: Vec<Socket> = Vec::new();
    // Per call: the socket it acts on; for an accept, also the listening socket.
    let mut on: Vec<Option<usize>> = vec![None; lane.calls.len()];
    let mut listener: Vec<Option<usize>> = vec![None; lane.calls.len()];
    // Per readiness report: the sockets found ready to read.
    let mut ready: Vec<Vec<usize>> = vec![Vec::new(); lane.calls.len()];
    // The descriptor tables, per process.
    let mut tables: HashMap<&str, HashMap<i32, usize>> = HashMap::new();
    // A parent's table at each fork, by the child's name (`server[4242]`).
    let mut at_fork: HashMap<String, HashMap<i32, usize>> = HashMap::new();
    // The close just after a fork closes a copy: no FIN.
    let mut copy_close: Vec<bool> = vec![false; lane.calls.len()];
    let mut after_fork: HashMap<&str, bool> = HashMap::new();
    // Parents first: a child starts with its parent's table as it was at the fork.
    let mut order: Vec<usize> = (0..lane.calls.len()).collect();
    order.sort_by_key(|&i| parent_of(&lane.calls[i].who).is_some());
    for i in order {
        let call = &lane.calls[i];
        let who = call.who.as_str();
        if !tables.contains_key(who) {
            let inherited = at_fork.remove(who).unwrap_or_default();
            tables.insert(who, inherited);
        }
        let Some(table) = tables.get_mut(who) else {
            continue;
        };
        let act = &acts[i];
        let fork_before = after_fork.insert(who, matches!(act, Act::Forked { .. } | Act::InChild));
        match *act {
            Act::Socket { fd, udp } => {
                sockets.push(Socket {
                    udp,
                    ..Socket::default()
                });
                table.insert(fd, sockets.len() - 1);
                on[i] = Some(sockets.len() - 1);
            }
            Act::Accept {
                listener: from,
                fd,
                peer,
            } => {
                listener[i] = table.get(&from).copied();
                sockets.push(Socket {
                    port: Some(peer),
                    ..Socket::default()
                });
                table.insert(fd, sockets.len() - 1);
                on[i] = Some(sockets.len() - 1);
            }
            Act::Forked { child } => {
                at_fork.insert(format!("{who}[{child}]"), table.clone());
            }
            Act::Close { fd } => {
                on[i] = table.remove(&fd);
                copy_close[i] = fork_before == Some(true);
            }
            Act::Listen { fd }
            | Act::Bind { fd, .. }
            | Act::Connect { fd, .. }
            | Act::LocalPort { fd, .. }
            | Act::Send { fd, .. }
            | Act::Receive { fd, .. }
            | Act::Eof { fd }
            | Act::Reset { fd }
            | Act::Shutdown { fd }
            | Act::Linger0 { fd }
            | Act::SendTo { fd, .. }
            | Act::RecvFrom { fd, .. } => on[i] = table.get(&fd).copied(),
            Act::Ready { ref fds } => {
                ready[i] = fds.iter().filter_map(|fd| table.get(fd).copied()).collect();
            }
            Act::Refused { fd } => on[i] = table.get(&fd).copied(),
            Act::InChild | Act::Exit | Act::Interrupted | Act::Reaped { .. } | Act::Other => {}
        }
        // A socket's port, as its calls reveal it.
        if let Some(s) = on[i].and_then(|s| sockets.get_mut(s)) {
            match *act {
                Act::Bind { port, .. } | Act::LocalPort { port, .. } if s.port.is_none() => {
                    s.port = Some(port)
                }
                Act::Linger0 { .. } => s.reset = true,
                Act::Listen { .. } => s.listening = true,
                _ => {}
            }
        }
    }
    let (out, into) = match lane.side {
        Side::Client => (Dir::Up, Dir::Down),
        Side::Server => (Dir::Down, Dir::Up),
    };
    let sems = lane
        .calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            match acts[i] {
                Act::Exit if parent_of(&call.who).is_some() => return Sem::Exit,
                Act::Interrupted => return Sem::Interrupted,
                Act::Reaped { child } => return Sem::Reaped(child),
                _ => {}
            }
            let Some(s) = on[i].and_then(|s| sockets.get(s)) else {
                return Sem::Local;
            };
            let Some(port) = s.port else {
                return Sem::Local;
            };
            let from_port = listener[i].and_then(|s| sockets.get(s)).and_then(|s| s.port);
            match (&acts[i], s.udp) {
                (Act::Connect { port: to, .. }, false) => Sem::Connect(port, *to),
                (Act::Accept { .. }, false) => Sem::Accept(port, from_port),
                (Act::Send { n, .. }, false) => Sem::Send(port, out, *n),
                (Act::Receive { n, .. }, false) => Sem::Receive(port, into, *n),
                (Act::Eof { .. }, false) => Sem::Eof(port, into),
                (Act::Shutdown { .. }, false) => Sem::Fin(port, out),
                (Act::Close { .. }, false) if copy_close[i] => Sem::Local,
                (Act::Close { .. }, false) if s.reset => Sem::Reset(port, out),
                (Act::Close { .. }, false) => Sem::Fin(port, out),
                (Act::Reset { .. }, false) => Sem::ResetSeen(port, into),
                (Act::SendTo { port: to, n, .. }, true) => Sem::DatagramOut(port, *to, *n),
                (Act::RecvFrom { port: from, n, .. }, true) => Sem::DatagramIn(*from, port, *n),
                (Act::Refused { .. }, true) => Sem::Refused(port),
                _ => Sem::Local,
            }
        })
        .collect();
    // A readiness report counts for a socket when the process's next call on it takes
    // what was ready: an accept from a listening socket, a receive (bytes, end of
    // stream, a reset) on a connection. (A listening socket shut down at a stop is
    // readable too, with nothing to accept.)
    let wakes = (0..lane.calls.len())
        .map(|i| {
            let who = &lane.calls[i].who;
            ready[i]
                .iter()
                .filter_map(|&sock| {
                    let s = sockets.get(sock)?;
                    let port = s.port?;
                    let next = (i + 1..lane.calls.len()).find(|&j| {
                        lane.calls[j].who == *who && (on[j] == Some(sock) || listener[j] == Some(sock))
                    })?;
                    match acts[next] {
                        Act::Accept { .. } if s.listening && listener[next] == Some(sock) => {
                            Some(Wake::Queue(port))
                        }
                        Act::Receive { .. } | Act::Eof { .. } | Act::Reset { .. }
                            if !s.udp && !s.listening =>
                        {
                            Some(Wake::Data(port, into))
                        }
                        _ => None,
                    }
                })
                .collect()
        })
        .collect();
    (sems, wakes)
}

/// Per lane: the child exits a call interrupted by a signal comes after (see the module's
/// doc), as `(interrupted call, exit)` pairs of call indexes.
pub(super) fn interruptions(lane: &Lane, sems: &[Sem]) -> Vec<(usize, usize)> {
    let mut taken = vec![false; lane.calls.len()];
    let mut pairs = Vec::new();
    for (i, call) in lane.calls.iter().enumerate() {
        if sems[i] != Sem::Interrupted {
            continue;
        }
        for (j, exit) in lane.calls.iter().enumerate() {
            if sems[j] == Sem::Exit
                && !taken[j]
                && parent_of(&exit.who) == Some(call.who.as_str())
                && exit.t_us <= call.end()
            {
                taken[j] = true;
                pairs.push((i, j));
            }
        }
    }
    pairs
}

/// Per lane: each `waitpid()` and the `_exit()` of the child it reaped, as `(waitpid,
/// exit)` pairs of call indexes.
pub(super) fn reapings(lane: &Lane, sems: &[Sem]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (i, call) in lane.calls.iter().enumerate() {
        let Sem::Reaped(child) = sems[i] else {
            continue;
        };
        let who = format!("{}[{child}]", call.who);
        if let Some(j) = (0..lane.calls.len()).find(|&j| sems[j] == Sem::Exit && lane.calls[j].who == who) {
            pairs.push((i, j));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{checked, epoll_lanes, forked};
    use super::super::{Dir, Sem, Wire, build, check};

    #[test]
    fn a_fork_model_child_starts_with_its_parents_descriptors() {
        let (client, server) = forked();
        let t = checked(client, server);
        assert_eq!(
            t.sems[1][2],
            Sem::Local,
            "the parent's close of its copy sends no FIN"
        );
        assert_eq!(t.sems[1][4], Sem::Send(5555, Dir::Down, 3));
        let fin = t.arrows.iter().find(|a| a.wire == Wire::Fin).unwrap();
        assert_eq!(fin.from, (1, 5), "the FIN is the child's shutdown()");
    }

    #[test]
    fn a_report_not_followed_by_taking_what_was_ready_ties_to_nothing() {
        let mut lanes = epoll_lanes();
        // The server stops instead of reading: the report is not tied to the write.
        lanes[1].calls.truncate(7);
        let t = build(lanes).unwrap();
        check(&t).unwrap();
        assert!(t.wakes[1][6].is_empty());
    }
}
