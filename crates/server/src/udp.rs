//! The UDP server: `recvfrom()` a datagram, `sendto()` the reply to its sender, repeat.
//! No connection, no accept, no per-client state.

use std::io;
use std::net::{Shutdown, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use hello_proto::trace::Event;
use hello_proto::{Error, Step};
use socket2::SockRef;

use crate::{Config, Stop, report};

/// Largest datagram payload accepted (IPv4's maximum UDP payload is 65,507 bytes).
const MAX_DATAGRAM: usize = 65536;

/// Answers datagrams until `stop` (or after the first one, with `once`).
pub fn run(socket: UdpSocket, config: &Config, stop: &Stop, once: bool) -> Result<(), Error> {
    let local = socket
        .local_addr()
        .map_err(|e| Error::new(Step::Getsockname, "socket", e))?;
    let socket = Arc::new(socket);
    let waking = Arc::clone(&socket);
    // shutdown(SHUT_RD) wakes a blocked recvfrom(), which then returns 0 bytes.
    let _wake = stop.on_stop(move || {
        let _ = SockRef::from(&*waking).shutdown(Shutdown::Read);
    });
    let tracer = &config.tracer;
    let fd = socket.as_raw_fd();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        if stop.is_stopped() {
            return Ok(());
        }
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if stop.is_stopped() {
                    return Ok(());
                }
                if tracer.on() {
                    tracer.emit(Event::Failed {
                        step: Step::Recvfrom,
                        fd: Some(fd),
                        err: &e,
                    });
                }
                // A pending ICMP error or a datagram that vanished: the socket is fine.
                report(&Error::new(Step::Recvfrom, local, e));
                continue;
            }
        };
        if stop.is_stopped() {
            return Ok(());
        }
        if tracer.on() {
            tracer.emit(Event::RecvFrom {
                fd,
                peer,
                data: &buf[..n],
            });
        }
        let reply = config.service.datagram_reply(&buf[..n]);
        match socket.send_to(&reply, peer) {
            Ok(sent) => {
                if tracer.on() {
                    tracer.emit(Event::SendTo {
                        fd,
                        peer,
                        data: &reply[..sent],
                    });
                }
            }
            Err(e) => {
                if tracer.on() {
                    tracer.emit(Event::Failed {
                        step: Step::Sendto,
                        fd: Some(fd),
                        err: &e,
                    });
                }
                report(&Error::new(Step::Sendto, peer, e));
            }
        }
        if once {
            return Ok(());
        }
    }
}
