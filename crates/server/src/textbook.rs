//! `hello-server --textbook`: the tutorials' server programs call for call — `hello_server.c`
//! (`socket`, `bind` to `INADDR_ANY`, `listen(5)`, `accept`, `write(clnt_sock, message,
//! sizeof(message))`, `close(clnt_sock)`, `close(serv_sock)`), its echo sibling (one
//! `read()`, the reply `"<len> : <msg>"` in one `write()`) and the UDP one (`recvfrom`,
//! `sendto`, `close`): one client (one datagram), then exit. Nothing real software adds:
//! no socket option, no `MSG_MORE`, no unread check, no time limit, no readiness call, no
//! signal handler. Every call goes through `hello_proto::sys::textbook`, traced with the
//! C line that makes it (the C programs are `tests/c/`, and `tests/tests/textbook.rs`
//! compares the calls under strace).
//!
//! ```text
//! terminal 1: hello-server --textbook --trace 9190
//! terminal 2: hello-client --textbook 127.0.0.1 9190
//! ```

use std::borrow::Cow;
use std::io::{self, Write as _};
use std::net::{SocketAddr, SocketAddrV4};

use hello_proto::Error;
use hello_proto::sys::Tracer;
use hello_proto::sys::textbook::{self as call, Sock};
use hello_proto::trace::Kind;
use hello_proto::wire::{EchoRequest, Progress, Service};

/// The textbook's `listen(serv_sock, 5)`: the backlog unless `--backlog` says otherwise.
pub const BACKLOG: i32 = 5;

/// The echo programs' `char buf[BUF_SIZE]`: one `read()` takes at most `BUF_SIZE - 1`
/// bytes (the last is for the NUL the C program puts after them).
const BUF_SIZE: usize = 1024;

/// What `--textbook` serves, and where.
#[derive(Debug, Clone)]
pub struct Textbook {
    /// The address to bind: `0.0.0.0` (`htonl(INADDR_ANY)`) unless `--bind` says.
    pub addr: SocketAddrV4,
    /// The `listen()` backlog ([`BACKLOG`] unless `--backlog` says).
    pub backlog: i32,
    /// Hello (the greeting) or echo.
    pub service: Service,
    /// UDP (`uecho_server.c`) instead of TCP.
    pub udp: bool,
}

/// The C lines of `tests/c/hello_server.c` and `echo_server.c` (and the UDP server's),
/// one per call, shown in the trace beside the call they make.
mod src {
    pub const SOCKET: &str = "serv_sock = socket(PF_INET, SOCK_STREAM, 0);";
    pub const SOCKET_UDP: &str = "serv_sock = socket(PF_INET, SOCK_DGRAM, 0);";
    pub const BIND: &str = "bind(serv_sock, (struct sockaddr *)&serv_addr, sizeof(serv_addr))";
    pub const LISTEN: &str = "listen(serv_sock, 5)";
    pub const GETSOCKNAME: &str = "getsockname(serv_sock, (struct sockaddr *)&serv_addr, &addr_size)";
    pub const ACCEPT: &str = "clnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_addr, &addr_size);";
    pub const WRITE_GREETING: &str = "write(clnt_sock, message, sizeof(message));";
    pub const READ: &str = "str_len = read(clnt_sock, buf, sizeof(buf) - 1);";
    pub const WRITE_REPLY: &str = "write(clnt_sock, reply, strlen(reply) + 1);";
    pub const CLOSE_CLIENT: &str = "close(clnt_sock);";
    pub const CLOSE_SERVER: &str = "close(serv_sock);";
    pub const RECVFROM: &str =
        "str_len = recvfrom(serv_sock, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&clnt_addr, &addr_size);";
    pub const SENDTO_GREETING: &str =
        "sendto(serv_sock, message, sizeof(message), 0, (struct sockaddr *)&clnt_addr, addr_size);";
    pub const SENDTO_REPLY: &str =
        "sendto(serv_sock, reply, strlen(reply) + 1, 0, (struct sockaddr *)&clnt_addr, addr_size);";
}

/// Every C line this program shows, for the test that finds each in the C programs.
pub const SOURCE_LINES: [&str; 14] = [
    src::SOCKET,
    src::SOCKET_UDP,
    src::BIND,
    src::LISTEN,
    src::GETSOCKNAME,
    src::ACCEPT,
    src::WRITE_GREETING,
    src::READ,
    src::WRITE_REPLY,
    src::CLOSE_CLIENT,
    src::CLOSE_SERVER,
    src::RECVFROM,
    src::SENDTO_GREETING,
    src::SENDTO_REPLY,
];

/// Runs the textbook's program once: set up, print the start-up line on stderr (stdout
/// stays the C program's: empty), serve one client or datagram, close, return.
pub fn run(t: &Textbook, tracer: &Tracer) -> Result<(), Error> {
    if t.udp {
        serve_datagram(t, tracer)
    } else {
        serve_stream(t, tracer)
    }
}

/// `hello_server.c` / `echo_server.c`.
fn serve_stream(t: &Textbook, tracer: &Tracer) -> Result<(), Error> {
    let serv = call::socket(Kind::Stream, src::SOCKET, tracer)?;
    call::bind(&serv, t.addr, src::BIND, tracer)?;
    call::listen(&serv, t.backlog, t.addr, src::LISTEN, tracer)?;
    let local = announce(&serv, t.addr, tracer)?;
    let (clnt, peer) = call::accept(&serv, local, src::ACCEPT, tracer)?;
    match &t.service {
        Service::Hello { greeting } => {
            call::write(&clnt, greeting, peer, src::WRITE_GREETING, tracer)?;
        }
        Service::Echo { .. } => {
            let mut buf = [0u8; BUF_SIZE];
            let n = call::read(&clnt, &mut buf[..BUF_SIZE - 1], peer, src::READ, tracer)?;
            let reply = echo_reply(buf.get(..n).unwrap_or_default());
            call::write(&clnt, &reply, peer, src::WRITE_REPLY, tracer)?;
        }
    }
    call::close(clnt, src::CLOSE_CLIENT, tracer);
    call::close(serv, src::CLOSE_SERVER, tracer);
    Ok(())
}

/// `uecho_server.c`, made one-shot: one datagram, its reply, close.
fn serve_datagram(t: &Textbook, tracer: &Tracer) -> Result<(), Error> {
    let serv = call::socket(Kind::Dgram, src::SOCKET_UDP, tracer)?;
    call::bind(&serv, t.addr, src::BIND, tracer)?;
    let local = announce(&serv, t.addr, tracer)?;
    let mut buf = [0u8; BUF_SIZE];
    let (n, from) = call::recvfrom(&serv, &mut buf[..BUF_SIZE - 1], local, src::RECVFROM, tracer)?;
    let reply: Cow<'_, [u8]> = t.service.datagram_reply(buf.get(..n).unwrap_or_default());
    let line = match t.service {
        Service::Hello { .. } => src::SENDTO_GREETING,
        Service::Echo { .. } => src::SENDTO_REPLY,
    };
    call::sendto(&serv, &reply, from, line, tracer)?;
    call::close(serv, src::CLOSE_SERVER, tracer);
    Ok(())
}

/// The echo reply to what one `read()` returned: the message up to its NUL or LF (the
/// whole of it when it holds neither, as after end of stream), `"<len> : <msg>"`.
fn echo_reply(got: &[u8]) -> Vec<u8> {
    let mut request = EchoRequest::new(BUF_SIZE - 1);
    match request.feed(got) {
        Progress::Reply(r) | Progress::TooLong(r) => r,
        Progress::NeedMore | Progress::Done => match request.finish() {
            Progress::Reply(r) | Progress::TooLong(r) => r,
            Progress::NeedMore | Progress::Done => Vec::new(),
        },
    }
}

/// The start-up line, on stderr in this mode: `listening on ADDR`, with the port the
/// kernel chose for port 0 (the one call added to the textbook's, `getsockname()`).
fn announce(serv: &Sock, asked: SocketAddrV4, tracer: &Tracer) -> Result<SocketAddr, Error> {
    let local = if asked.port() == 0 {
        call::getsockname(serv, asked, src::GETSOCKNAME, tracer)?
    } else {
        SocketAddr::V4(asked)
    };
    // One write(), as the C program's one printf() line.
    let _ = io::stderr()
        .lock()
        .write_all(format!("{}\n", hello_proto::startup::Line::Listening(local)).as_bytes());
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_reply_is_the_c_programs_for_what_one_read_returned() {
        assert_eq!(echo_reply(b"hello\0"), b"5 : hello\0");
        assert_eq!(echo_reply(b"abc"), b"3 : abc\0");
        assert_eq!(echo_reply(b""), b"0 : \0");
        assert_eq!(echo_reply("한글\0".as_bytes()), "6 : 한글\0".as_bytes());
        assert_eq!(
            echo_reply(&[b'x'; BUF_SIZE - 1]).len(),
            "1023 : ".len() + BUF_SIZE
        );
    }
}
