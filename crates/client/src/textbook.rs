//! `hello-client --textbook`: the tutorials' client programs call for call —
//! `hello_client.c` (`socket`, `connect`, ONE `read()` into `char message[30]`, `close`),
//! its echo sibling (`write()` of the message and its NUL between them, the read into
//! `message[BUF_SIZE]`) and the UDP one (`sendto`, ONE `recvfrom`, `close`, with no
//! `connect()`). Nothing real software adds: no name resolution (an IPv4 address, as
//! `inet_addr()` takes), no time limit, no half-close, no reading to the end of the
//! stream — one `read()` may return part of a reply, as the tutorial warns. Every call
//! goes through `hello_proto::sys::textbook`, traced with the C line that makes it.
//!
//! ```text
//! terminal 1: hello-server --textbook 9190
//! terminal 2: hello-client --textbook --trace 127.0.0.1 9190
//! ```

use std::net::{SocketAddr, SocketAddrV4};

use hello_proto::Error;
use hello_proto::sys::Tracer;
use hello_proto::sys::textbook as call;
use hello_proto::trace::Kind;
use hello_proto::wire::c_string;

/// `hello_client.c`'s `char message[30]`.
const HELLO_BUF: usize = 30;

/// The echo and UDP clients' `char message[BUF_SIZE]`.
const BUF_SIZE: usize = 1024;

/// The C lines of `tests/c/hello_client.c`, `echo_client.c` and `uecho_client.c`, one per
/// call, shown in the trace beside the call they make.
mod src {
    pub const SOCKET: &str = "sock = socket(PF_INET, SOCK_STREAM, 0);";
    pub const SOCKET_UDP: &str = "sock = socket(PF_INET, SOCK_DGRAM, 0);";
    pub const CONNECT: &str = "connect(sock, (struct sockaddr *)&serv_addr, sizeof(serv_addr))";
    pub const WRITE: &str = "write(sock, argv[3], strlen(argv[3]) + 1)";
    pub const READ: &str = "str_len = read(sock, message, sizeof(message) - 1);";
    pub const SENDTO: &str =
        "sendto(sock, argv[3], strlen(argv[3]) + 1, 0, (struct sockaddr *)&serv_addr, sizeof(serv_addr))";
    pub const SENDTO_EMPTY: &str =
        "sendto(sock, \"\", 0, 0, (struct sockaddr *)&serv_addr, sizeof(serv_addr))";
    pub const RECVFROM: &str = "str_len = recvfrom(sock, message, sizeof(message) - 1, 0, (struct sockaddr *)&from_addr, &addr_size);";
    pub const CLOSE: &str = "close(sock);";
}

/// Every C line this program shows but the empty datagram's (which no C peer sends), for
/// the test that finds each in the C programs.
pub const SOURCE_LINES: [&str; 8] = [
    src::SOCKET,
    src::SOCKET_UDP,
    src::CONNECT,
    src::WRITE,
    src::READ,
    src::SENDTO,
    src::RECVFROM,
    src::CLOSE,
];

/// Runs the textbook's client once and returns what it prints after `Message from
/// server: `: the bytes its one `read()` (or `recvfrom()`) returned, up to the first NUL,
/// as `printf("%s")` stops there.
pub fn run(
    server: SocketAddrV4,
    message: Option<&str>,
    udp: bool,
    tracer: &Tracer,
) -> Result<Vec<u8>, Error> {
    let mut got = if udp {
        datagram(server, message, tracer)?
    } else {
        stream(server, message, tracer)?
    };
    if let Some(nul) = got.iter().position(|&b| b == 0) {
        got.truncate(nul);
    }
    Ok(got)
}

/// `hello_client.c` / `echo_client.c`.
fn stream(server: SocketAddrV4, message: Option<&str>, tracer: &Tracer) -> Result<Vec<u8>, Error> {
    let peer = SocketAddr::V4(server);
    let sock = call::socket(Kind::Stream, src::SOCKET, tracer)?;
    call::connect(&sock, server, src::CONNECT, tracer)?;
    let size = match message {
        Some(text) => {
            call::write(&sock, &c_string(text), peer, src::WRITE, tracer)?;
            BUF_SIZE
        }
        None => HELLO_BUF,
    };
    let mut buf = vec![0u8; size - 1];
    let n = call::read(&sock, &mut buf, peer, src::READ, tracer)?;
    buf.truncate(n);
    call::close(sock, src::CLOSE, tracer);
    Ok(buf)
}

/// `uecho_client.c`: no `connect()`; the first datagram from anyone is the reply.
fn datagram(server: SocketAddrV4, message: Option<&str>, tracer: &Tracer) -> Result<Vec<u8>, Error> {
    let to = SocketAddr::V4(server);
    let sock = call::socket(Kind::Dgram, src::SOCKET_UDP, tracer)?;
    match message {
        Some(text) => call::sendto(&sock, &c_string(text), to, src::SENDTO, tracer)?,
        None => call::sendto(&sock, b"", to, src::SENDTO_EMPTY, tracer)?,
    };
    let mut buf = vec![0u8; BUF_SIZE - 1];
    let (n, _from) = call::recvfrom(&sock, &mut buf, to, src::RECVFROM, tracer)?;
    buf.truncate(n);
    call::close(sock, src::CLOSE, tracer);
    Ok(buf)
}
