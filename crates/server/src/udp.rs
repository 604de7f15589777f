//! The UDP server: `recvfrom()` a datagram, `sendto()` the reply to its sender, repeat.
//! No connection, no accept, no per-client state.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use hello_proto::trace::Event;
use hello_proto::{Error, Step};

use crate::{Config, Stop, report};

/// Largest datagram payload accepted (IPv4's maximum UDP payload is 65,507 bytes).
const MAX_DATAGRAM: usize = 65536;

/// Answers datagrams until `stop` (or after the first one, with `once`).
pub fn run(socket: UdpSocket, config: &Config, stop: &Stop, once: bool) -> Result<(), Error> {
    let local = socket
        .local_addr()
        .map_err(|e| Error::new(Step::Getsockname, "socket", e))?;
    // A stop wakes the blocked recvfrom() with an empty datagram sent to the socket's own
    // address; the loop then sees the stop flag. (shutdown(SHUT_RD) would wake it too, but
    // recvfrom() then returns no sender address at all, which std's recv_from rejects
    // with a panic.)
    let wake_to = own_address(local);
    let _wake = stop.on_stop(move || {
        let any: SocketAddr = if wake_to.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        if let Ok(s) = UdpSocket::bind(any) {
            let _ = s.send_to(&[], wake_to);
        }
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

/// Where a datagram reaches a socket bound to `local`: the address itself, or the
/// loopback address of its family when it is bound to every address (`0.0.0.0`, `::`).
fn own_address(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hello_proto::wire::Service;
    use std::time::Duration;

    #[test]
    fn own_address_of_wildcards_is_loopback() {
        assert_eq!(
            own_address("0.0.0.0:7".parse().unwrap()),
            "127.0.0.1:7".parse().unwrap()
        );
        assert_eq!(own_address("[::]:7".parse().unwrap()), "[::1]:7".parse().unwrap());
        assert_eq!(
            own_address("127.0.0.2:7".parse().unwrap()),
            "127.0.0.2:7".parse().unwrap()
        );
    }

    #[test]
    fn stop_wakes_a_server_blocked_in_recvfrom() {
        for bind in ["127.0.0.1:0", "0.0.0.0:0"] {
            let socket = UdpSocket::bind(bind).unwrap();
            let stop = Stop::new();
            let config = Config::new(Service::hello("hi"));
            let stopper = stop.clone();
            let server = std::thread::spawn(move || run(socket, &config, &stop, false));
            // Give the server time to block in recvfrom(), the case the wake is for. The
            // test would pass without the pause too, only exercising less.
            std::thread::sleep(Duration::from_millis(50));
            stopper.stop();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !server.is_finished() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{bind}: the UDP server did not stop"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(server.join().unwrap().is_ok(), "{bind}");
        }
    }
}
