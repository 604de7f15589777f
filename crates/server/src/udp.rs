//! The UDP server: take the datagrams waiting (up to [`BATCH`]) in one `recvmmsg()`,
//! answer each with `Service::datagram_reply`, send the replies in one `sendmmsg()` (one
//! reply: `sendto()`), repeat. No connection, no accept, no per-client state: every datagram gets exactly one
//! reply datagram, to its sender, whatever else came in the same batch.

use std::borrow::Cow;

use hello_proto::sys::{Batch, Dgram};
use hello_proto::{Error, Step};

use crate::{Config, Stop, Summary, report};

/// Largest datagram payload accepted (IPv4's maximum UDP payload is 65,507 bytes).
const MAX_DATAGRAM: usize = 65536;

/// Datagrams one `recvmmsg()` may take. 64 slots of 64 KiB are 4 MiB of address space;
/// a slot's pages are only touched by a datagram that long (docs/performance.md, "UDP").
pub const BATCH: usize = 64;

/// [`run`] on each socket of a `SO_REUSEPORT` set (`sys::bind_udp_reuseport`), each on a
/// thread of its own; the summaries added. A
/// worker that fails stops the others; the first failure is returned.
pub fn run_workers(mut sockets: Vec<Dgram>, config: &Config, stop: &Stop) -> Result<Summary, Error> {
    if sockets.len() == 1 {
        if let Some(socket) = sockets.pop() {
            return run(socket, config, stop);
        }
    }
    crate::on_worker_threads(sockets, "udp-worker", stop, |socket| run(socket, config, stop))
}

/// Answers datagrams until `stop` (or after the first one, with `config.once`).
pub fn run(socket: Dgram, config: &Config, stop: &Stop) -> Result<Summary, Error> {
    let fd = socket.fd();
    let local = socket
        .local_addr()
        .map_err(|e| Error::new(Step::Getsockname, format!("UDP socket {fd}"), e))?;
    // A stop wakes the blocked recvfrom() by shutting the socket down for reading, through
    // a duplicate descriptor owned by the waker.
    let waking = socket
        .try_clone()
        .map_err(|e| Error::new(Step::Fcntl, local, e))?;
    let _wake = stop.on_stop(move || waking.shutdown_read());
    // --once answers exactly one datagram: a batch of one.
    let mut batch = Batch::new(if config.once { 1 } else { BATCH }, MAX_DATAGRAM);
    let mut replies: Vec<Cow<'_, [u8]>> = Vec::with_capacity(BATCH);
    let mut summary = Summary::default();
    while !stop.is_stopped() {
        match socket.recv_batch(&mut batch) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) if stop.is_stopped() => break,
            Err(e) => {
                // A pending ICMP error or a datagram that vanished: the socket is fine.
                report(&Error::new(Step::Recvmmsg, local, e));
                continue;
            }
        }
        replies.clear();
        replies.extend((0..batch.len()).map(|i| config.service.datagram_reply(batch.datagram(i))));
        let refused = socket.reply_batch(&mut batch, &replies);
        for _ in refused.len()..batch.len() {
            summary.count(false);
            crate::metrics::datagram(false);
        }
        for (i, step, e) in refused {
            let to = batch.peer(i).map_or_else(|| local.to_string(), |p| p.to_string());
            report(&Error::new(step, to, e));
            summary.count(true);
            crate::metrics::datagram(true);
        }
        if config.once {
            break;
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hello_proto::sys::{Tracer, bind_udp};
    use hello_proto::wire::Service;
    use std::time::{Duration, Instant};

    #[test]
    fn stop_wakes_a_server_blocked_in_recvmmsg() {
        for bind in ["127.0.0.1:0", "0.0.0.0:0"] {
            let socket = bind_udp(bind.parse().unwrap(), &Tracer::off()).unwrap();
            let stop = Stop::new();
            let config = Config::new(Service::hello("hi"));
            let stopper = stop.clone();
            let server = std::thread::spawn(move || run(socket, &config, &stop));
            // Give the server time to block in recvmmsg(), the case the wake is for. The
            // test would pass without the pause too, only exercising less.
            std::thread::sleep(Duration::from_millis(50));
            stopper.stop();
            let deadline = Instant::now() + Duration::from_secs(5);
            while !server.is_finished() {
                assert!(Instant::now() < deadline, "{bind}: the UDP server did not stop");
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(server.join().unwrap().is_ok(), "{bind}");
        }
    }
}
