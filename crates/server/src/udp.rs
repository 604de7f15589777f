//! The UDP server: `recvfrom()` a datagram, `sendto()` the reply to its sender, repeat.
//! No connection, no accept, no per-client state: the reply is the pure
//! `Service::datagram_reply`.

use hello_proto::sys::Dgram;
use hello_proto::{Error, Step};

use crate::{Config, Stop, Summary, report};

/// Largest datagram payload accepted (IPv4's maximum UDP payload is 65,507 bytes).
const MAX_DATAGRAM: usize = 65536;

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
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut summary = Summary::default();
    while !stop.is_stopped() {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(Some(got)) => got,
            // Shut down for reading: nothing more can arrive.
            Ok(None) => break,
            Err(_) if stop.is_stopped() => break,
            Err(e) => {
                // A pending ICMP error or a datagram that vanished: the socket is fine.
                report(&Error::new(Step::Recvfrom, local, e));
                continue;
            }
        };
        let reply = config.service.datagram_reply(&buf[..n]);
        let failed = match socket.send_to(&reply, peer) {
            Ok(_) => false,
            Err(e) => {
                report(&Error::new(Step::Sendto, peer, e));
                true
            }
        };
        summary.count(failed);
        crate::metrics::datagram(failed);
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
    fn stop_wakes_a_server_blocked_in_recvfrom() {
        for bind in ["127.0.0.1:0", "0.0.0.0:0"] {
            let socket = bind_udp(bind.parse().unwrap(), &Tracer::off()).unwrap();
            let stop = Stop::new();
            let config = Config::new(Service::hello("hi"));
            let stopper = stop.clone();
            let server = std::thread::spawn(move || run(socket, &config, &stop));
            // Give the server time to block in recvfrom(), the case the wake is for. The
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
