//! The bytes on the wire: the greeting, the echo request framing and reply, and how a
//! client shows what it received. Pure functions and state machines, no I/O.

use std::borrow::Cow;
use std::fmt;

/// The greeting of `hello_server.c`.
pub const DEFAULT_GREETING: &str = "Hello World!";

/// Default bound on an echo request, terminator not counted (`--max-request`).
pub const DEFAULT_MAX_REQUEST: usize = 65536;

/// The greeting's wire bytes: its UTF-8 text and one NUL, as `write(sock, message,
/// sizeof(message))` sends a C string literal.
pub fn greeting(text: &str) -> Vec<u8> {
    c_string(text)
}

/// A text as the textbook's programs send a C string: its UTF-8 bytes and one NUL (the
/// greeting's `sizeof(message)`, the client's `strlen(message) + 1`).
pub fn c_string(text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(text.len() + 1);
    v.extend_from_slice(text.as_bytes());
    v.push(0);
    v
}

/// What ended an echo request; it decides how the reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    /// A NUL byte, as the textbook client sends; the reply ends with NUL.
    Nul,
    /// A LF byte (a CR before it is dropped), as `echo hi | nc` sends; the reply ends with LF.
    Lf,
    /// End of stream (the client half-closed); the reply ends with NUL.
    Eof,
}

impl Terminator {
    /// The byte that ends the reply.
    pub fn reply_end(self) -> u8 {
        match self {
            Terminator::Lf => b'\n',
            Terminator::Nul | Terminator::Eof => 0,
        }
    }
}

/// The echo reply, `sprintf("%d : %s", strlen(msg), msg)` plus `end`: `5 : hello\0`.
pub fn echo_reply(msg: &[u8], end: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(msg.len() + 24);
    v.extend_from_slice(msg.len().to_string().as_bytes());
    v.extend_from_slice(b" : ");
    v.extend_from_slice(msg);
    v.push(end);
    v
}

/// The reply to a request longer than `limit` bytes, after which the connection is closed.
pub fn too_long_reply(limit: usize) -> Vec<u8> {
    format!("error: message longer than {limit} bytes\0").into_bytes()
}

/// The reply to a request the server has no memory left for (`--max-buffered`), after
/// which the connection is closed.
pub const BUSY_REPLY: &[u8] = b"error: server busy\0";

/// The largest UDP payload that can be sent over IPv4 (65,535 less the IP and UDP
/// headers); IPv6 allows 20 bytes more, and the same limit keeps both alike.
pub const MAX_DATAGRAM: usize = 65_507;

/// The longest message whose echo reply fits one datagram: `65498 : <65,498 bytes>\0` is
/// [`MAX_DATAGRAM`] bytes.
pub const MAX_DATAGRAM_MESSAGE: usize = 65_498;

/// Where an echo request stands after some input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// No terminator yet: read more.
    NeedMore,
    /// The request is complete: send these bytes, then close.
    Reply(Vec<u8>),
    /// The request exceeded the limit: send this error reply, then close.
    TooLong(Vec<u8>),
    /// A reply was already produced; later input is ignored.
    Done,
}

/// Frames one echo request over a byte stream (docs/contract.md#the-echo-service): feed it bytes as they arrive,
/// in pieces of any size, and call [`EchoRequest::finish`] at end of stream.
///
/// Memory stays below `limit + 2` bytes whatever the input.
#[derive(Debug, Clone)]
pub struct EchoRequest {
    buf: Vec<u8>,
    limit: usize,
    done: bool,
}

impl EchoRequest {
    /// A request bounded to `limit` bytes (terminator not counted).
    pub fn new(limit: usize) -> Self {
        EchoRequest {
            buf: Vec::new(),
            limit,
            done: false,
        }
    }

    /// Bytes held so far.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of memory the request holds (its buffer's capacity, which grows ahead of
    /// what it holds).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Takes the next piece of the stream.
    pub fn feed(&mut self, bytes: &[u8]) -> Progress {
        if self.done {
            return Progress::Done;
        }
        match bytes.iter().position(|&b| b == 0 || b == b'\n') {
            Some(i) => {
                let term = if bytes[i] == 0 {
                    Terminator::Nul
                } else {
                    Terminator::Lf
                };
                if !self.room_for(i) {
                    return self.too_long();
                }
                self.buf.extend_from_slice(&bytes[..i]);
                if term == Terminator::Lf && self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                self.complete(term)
            }
            None => {
                // One byte beyond the limit may be held: it can be a CR that a following
                // LF removes from the message.
                if !self.room_for(bytes.len()) {
                    return self.too_long();
                }
                self.buf.extend_from_slice(bytes);
                if self.buf.len() > self.limit && self.buf.last() != Some(&b'\r') {
                    return self.too_long();
                }
                Progress::NeedMore
            }
        }
    }

    /// The client half-closed: what was buffered is the message.
    pub fn finish(&mut self) -> Progress {
        if self.done {
            return Progress::Done;
        }
        if self.buf.len() > self.limit {
            return self.too_long();
        }
        self.complete(Terminator::Eof)
    }

    fn room_for(&self, n: usize) -> bool {
        self.buf.len().saturating_add(n) <= self.limit.saturating_add(1)
    }

    fn complete(&mut self, term: Terminator) -> Progress {
        self.done = true;
        if self.buf.len() > self.limit {
            return self.too_long();
        }
        let reply = echo_reply(&self.buf, term.reply_end());
        self.buf = Vec::new();
        Progress::Reply(reply)
    }

    fn too_long(&mut self) -> Progress {
        self.done = true;
        self.buf = Vec::new();
        Progress::TooLong(too_long_reply(self.limit))
    }
}

/// The message of one echo datagram: up to its first NUL or LF, a CR before the LF dropped.
pub fn datagram_message(datagram: &[u8]) -> &[u8] {
    match datagram.iter().position(|&b| b == 0 || b == b'\n') {
        Some(i) if datagram[i] == b'\n' => datagram[..i].strip_suffix(b"\r").unwrap_or(&datagram[..i]),
        Some(i) => &datagram[..i],
        None => datagram,
    }
}

/// What is served (`--service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// Send the greeting (with its NUL) and close.
    Hello {
        /// The greeting's wire bytes, NUL included.
        greeting: Vec<u8>,
    },
    /// Read one message, reply `"<len> : <msg>"`, close.
    Echo {
        /// The longest message accepted, in bytes.
        max_request: usize,
    },
}

/// How a connection's exchange begins.
#[derive(Debug)]
pub enum Exchange<'a> {
    /// Write these bytes, then close (the hello service).
    Greet(&'a [u8]),
    /// Read a request into this framer, reply, then close (the echo service).
    Read(EchoRequest),
}

impl Service {
    /// The hello service with this greeting text.
    pub fn hello(text: &str) -> Self {
        Service::Hello {
            greeting: greeting(text),
        }
    }

    /// Starts the exchange of a newly accepted connection.
    pub fn start(&self) -> Exchange<'_> {
        match self {
            Service::Hello { greeting } => Exchange::Greet(greeting),
            Service::Echo { max_request } => Exchange::Read(EchoRequest::new(*max_request)),
        }
    }

    /// The reply datagram to one received datagram (docs/contract.md#the-hello-service,
    /// #the-echo-service). Every echo datagram gets one: a message whose reply would not
    /// fit one datagram gets the error reply, which does, so the limit over UDP is the
    /// smaller of `max_request` and [`MAX_DATAGRAM_MESSAGE`].
    pub fn datagram_reply<'a>(&'a self, datagram: &[u8]) -> Cow<'a, [u8]> {
        match self {
            Service::Hello { greeting } => Cow::Borrowed(greeting),
            Service::Echo { max_request } => {
                let limit = (*max_request).min(MAX_DATAGRAM_MESSAGE);
                let msg = datagram_message(datagram);
                if msg.len() > limit {
                    Cow::Owned(too_long_reply(limit))
                } else {
                    Cow::Owned(echo_reply(msg, 0))
                }
            }
        }
    }
}

/// How a client shows a reply on its one line: trailing NUL and line-ending bytes
/// stripped, invalid UTF-8 replaced, and control characters inside escaped (`\n`,
/// `\0`, `\x1b`) so that a peer can neither break the line nor drive the terminal;
/// invisible and direction characters too ([`escaped_when_shown`]), so that it can
/// neither split the line for a Unicode-aware reader nor make it read otherwise.
pub fn display_reply(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    // Writing to a String cannot fail.
    let _ = write_display(bytes, &mut out);
    out
}

/// [`display_reply`] written piece by piece to `out`, never holding the whole display
/// form: a large reply is shown in the memory of a few pieces. An error from `out`
/// stops the writing (a comparison that already knows its answer, a full stdout).
pub fn write_display(bytes: &[u8], out: &mut impl fmt::Write) -> fmt::Result {
    let end = bytes
        .iter()
        .rposition(|&b| !matches!(b, 0 | b'\r' | b'\n'))
        .map_or(0, |i| i + 1);
    for chunk in bytes[..end].utf8_chunks() {
        let text = chunk.valid();
        let mut clean = 0;
        for (i, c) in text.char_indices() {
            if c == '\t' || !escaped_when_shown(c) {
                continue;
            }
            out.write_str(&text[clean..i])?;
            write_escaped(c, out)?;
            clean = i + c.len_utf8();
        }
        out.write_str(&text[clean..])?;
        if !chunk.invalid().is_empty() {
            out.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    Ok(())
}

/// Whether [`display_reply`] escapes `c` (tab aside, which it keeps): control
/// characters, the line and paragraph separators (U+2028, U+2029), the bidirectional
/// embeddings, overrides, isolates and marks (U+202A–U+202E, U+2066–U+2069, U+061C,
/// U+200E, U+200F), and the zero-width and invisible characters (U+200B–U+200D,
/// U+2060–U+2064, U+FEFF).
pub fn escaped_when_shown(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// One character as [`display_reply`] escapes it: `\n`, `\r`, `\0`, or `\u{…}`.
pub fn write_escaped(c: char, out: &mut impl fmt::Write) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\0' => out.write_str("\\0"),
        c => write!(out, "{}", c.escape_unicode()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limit: usize, pieces: &[&[u8]], eof: bool) -> Progress {
        let mut r = EchoRequest::new(limit);
        for p in pieces {
            match r.feed(p) {
                Progress::NeedMore => {}
                done => return done,
            }
        }
        if eof { r.finish() } else { Progress::NeedMore }
    }

    #[test]
    fn greeting_has_trailing_nul() {
        assert_eq!(greeting(DEFAULT_GREETING), b"Hello World!\0");
        assert_eq!(greeting(DEFAULT_GREETING).len(), 13);
        assert_eq!(greeting(""), b"\0");
    }

    #[test]
    fn spec_examples() {
        let r = |b: &[u8]| run(DEFAULT_MAX_REQUEST, &[b], false);
        assert_eq!(r(b"hello\0"), Progress::Reply(b"5 : hello\0".to_vec()));
        assert_eq!(r(b"hi\n"), Progress::Reply(b"2 : hi\n".to_vec()));
        assert_eq!(
            r("한글\0".as_bytes()),
            Progress::Reply("6 : 한글\0".as_bytes().to_vec())
        );
        assert_eq!(r(b"\0"), Progress::Reply(b"0 : \0".to_vec()));
    }

    #[test]
    fn crlf_drops_cr() {
        assert_eq!(
            run(100, &[b"hi\r\n"], false),
            Progress::Reply(b"2 : hi\n".to_vec())
        );
        assert_eq!(
            run(100, &[b"hi\r", b"\n"], false),
            Progress::Reply(b"2 : hi\n".to_vec())
        );
        // A CR not followed by LF is part of the message.
        assert_eq!(
            run(100, &[b"a\rb\0"], false),
            Progress::Reply(b"3 : a\rb\0".to_vec())
        );
        // Only the CR right before the LF is dropped.
        assert_eq!(
            run(100, &[b"\r\r\n"], false),
            Progress::Reply(b"1 : \r\n".to_vec())
        );
    }

    #[test]
    fn eof_terminates_with_nul() {
        assert_eq!(run(100, &[b"abc"], true), Progress::Reply(b"3 : abc\0".to_vec()));
        assert_eq!(run(100, &[], true), Progress::Reply(b"0 : \0".to_vec()));
        assert_eq!(
            run(100, &[b"ab\r"], true),
            Progress::Reply(b"3 : ab\r\0".to_vec())
        );
    }

    #[test]
    fn first_terminator_wins_and_rest_is_ignored() {
        let mut r = EchoRequest::new(100);
        assert_eq!(r.feed(b"a\nb\0"), Progress::Reply(b"1 : a\n".to_vec()));
        assert_eq!(r.feed(b"more"), Progress::Done);
        assert_eq!(r.finish(), Progress::Done);
        assert_eq!(
            run(100, &[b"a\0b\n"], false),
            Progress::Reply(b"1 : a\0".to_vec())
        );
    }

    #[test]
    fn limit_counts_message_bytes_only() {
        let at = vec![b'x'; 8];
        let mut msg = at.clone();
        msg.push(0);
        assert!(matches!(run(8, &[&msg], false), Progress::Reply(_)));
        let mut crlf = at.clone();
        crlf.extend_from_slice(b"\r\n");
        assert!(matches!(run(8, &[&crlf], false), Progress::Reply(_)));
        assert!(matches!(
            run(8, &[&at[..4], &at[4..], b"\r", b"\n"], false),
            Progress::Reply(_)
        ));
        assert!(matches!(run(8, &[&at], true), Progress::Reply(_)));
    }

    #[test]
    fn over_limit_is_too_long() {
        let long = vec![b'x'; 9];
        let expect = Progress::TooLong(b"error: message longer than 8 bytes\0".to_vec());
        assert_eq!(run(8, &[&long], false), expect);
        assert_eq!(run(8, &[&long, b"\0"], false), expect);
        assert_eq!(run(8, &[b"xxxxxxxx\r", b"x"], false), expect);
        assert_eq!(run(8, &[b"xxxxxxxx\r"], true), expect);
        assert_eq!(run(8, &[b"xxxxxxxxx\0"], false), expect);
        let mut r = EchoRequest::new(8);
        assert_eq!(r.feed(&long), expect);
        assert_eq!(r.feed(b"\0"), Progress::Done);
    }

    #[test]
    fn datagrams() {
        let s = Service::Echo { max_request: 8 };
        assert_eq!(&*s.datagram_reply(b"hello\0junk"), b"5 : hello\0");
        assert_eq!(&*s.datagram_reply(b"hi\r\n"), b"2 : hi\0");
        assert_eq!(&*s.datagram_reply(b"hi"), b"2 : hi\0");
        assert_eq!(&*s.datagram_reply(b""), b"0 : \0");
        assert_eq!(
            &*s.datagram_reply(b"123456789"),
            b"error: message longer than 8 bytes\0"
        );
        let h = Service::hello("Hi");
        assert_eq!(&*h.datagram_reply(b"anything"), b"Hi\0");
    }

    #[test]
    fn every_echo_datagram_reply_fits_one_datagram() {
        let s = Service::Echo {
            max_request: 16 << 20,
        };
        let at = vec![b'x'; MAX_DATAGRAM_MESSAGE];
        assert_eq!(s.datagram_reply(&at).len(), MAX_DATAGRAM);
        let over = vec![b'x'; MAX_DATAGRAM_MESSAGE + 1];
        assert_eq!(
            &*s.datagram_reply(&over),
            b"error: message longer than 65498 bytes\0"
        );
        let most = vec![b'x'; 65_535];
        assert!(s.datagram_reply(&most).len() <= MAX_DATAGRAM);
    }

    #[test]
    fn display() {
        assert_eq!(display_reply(b"Hello World!\0"), "Hello World!");
        assert_eq!(display_reply(b"2 : hi\n"), "2 : hi");
        assert_eq!(display_reply(b"x\r\n\0\0"), "x");
        assert_eq!(display_reply(b"a\nb\0"), "a\\nb");
        assert_eq!(display_reply(b"\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(display_reply(b"\xff\xfeok"), "\u{fffd}\u{fffd}ok");
        assert_eq!(display_reply("한글\0".as_bytes()), "한글");
        assert_eq!(display_reply(b"\0\0"), "");
    }

    #[test]
    fn invisible_and_direction_characters_are_escaped() {
        // Line and paragraph separators (a new line to Unicode-aware readers), the
        // embedding, override and isolate controls (U+202E reverses what follows), and the
        // zero-width characters and marks: each range, both ends.
        for c in [
            '\u{2028}', '\u{2029}', '\u{202a}', '\u{202c}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{200b}',
            '\u{200d}', '\u{200f}', '\u{61c}', '\u{2060}', '\u{feff}',
        ] {
            let reply = format!("a{c}b\0");
            let shown = display_reply(reply.as_bytes());
            assert_eq!(shown, format!("a\\u{{{:x}}}b", c as u32), "U+{:04X}", c as u32);
            assert!(!shown.contains(c));
        }
        // Their neighbours are ordinary text.
        for c in [
            '\u{2027}', '\u{202f}', '\u{2065}', '\u{206a}', '\u{200a}', '\u{2010}',
        ] {
            let reply = format!("a{c}b");
            assert_eq!(display_reply(reply.as_bytes()), reply, "U+{:04X}", c as u32);
        }
    }
}
