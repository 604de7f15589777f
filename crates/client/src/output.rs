//! What hello-client prints for each exchange: the textbook line, the `--json` object,
//! and the error line (docs/contract.md#what-the-client-prints). The reply is written as
//! it is formed, a piece at a time, never as a second copy of itself: a 64 MiB reply is
//! printed in about 64 MiB of memory (tests/tests/client_memory.rs).

use std::fmt;
use std::io;
use std::time::Duration;

use hello_proto::wire::write_display;
use serde::Serialize;

use crate::{Report, attempts_note};

/// Bytes gathered before they are written out.
const PIECE: usize = 64 * 1024;

/// One exchange as `--json` prints it: one object per line. The reply's two fields,
/// `reply` and `reply_base64`, come last, written by [`Json::write`] as they are formed.
#[derive(Debug, Serialize)]
pub struct Json<'a> {
    /// The target as typed.
    pub target: &'a str,
    /// The server address used (resolved), if any.
    pub address: Option<String>,
    /// This end's address and ephemeral port, once connected.
    pub local: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
    /// Bytes of the request sent.
    pub sent: usize,
    /// Bytes of the reply received.
    pub received: usize,
    /// Whether the exchange succeeded (and passed its check).
    pub ok: bool,
    /// Attempts made (more than 1 only with `--wait`).
    pub attempts: u32,
    /// From the first attempt's start to the start of the one that counted.
    pub waited_us: u64,
    /// From the start of the attempt to the connection.
    pub connect_us: Option<u64>,
    /// From the start of the attempt to the first byte of the reply.
    pub first_byte_us: Option<u64>,
    /// From the start of the attempt to its end.
    pub total_us: u64,
    /// From the first attempt's start to the last one's end: the whole probe.
    pub elapsed_us: u64,
    /// On failure, the step that failed (`connect()`, `read()`, `--expect`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<&'static str>,
    /// On failure, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The reply's bytes, exactly as received.
    #[serde(skip)]
    pub reply: &'a [u8],
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl<'a> Json<'a> {
    /// The object for `report` of the target typed as `target`.
    pub fn of(target: &'a str, udp: bool, report: &'a Report) -> Json<'a> {
        let failure = report.outcome.as_ref().err();
        Json {
            target,
            address: report.addr.map(|a| a.to_string()),
            local: report.local.map(|a| a.to_string()),
            protocol: if udp { "udp" } else { "tcp" },
            sent: report.sent,
            received: report.reply.len(),
            ok: failure.is_none(),
            attempts: report.attempts,
            waited_us: micros(report.waited),
            connect_us: report.connect.map(micros),
            first_byte_us: report.first_byte.map(micros),
            total_us: micros(report.total),
            elapsed_us: micros(report.elapsed),
            step: failure.map(|f| f.step()),
            error: failure.map(|f| f.reason()),
            reply: &report.reply,
        }
    }

    /// Writes the object on one line, with its newline: the fields above, then `reply`
    /// (the reply as the textbook line shows it) and `reply_base64` (its bytes).
    pub fn write(&self, out: &mut impl io::Write) -> io::Result<()> {
        let mut head = serde_json::to_vec(self).map_err(io::Error::other)?;
        // The object without its closing brace; it has at least `target`, so a comma.
        head.pop();
        head.extend_from_slice(b",\"reply\":\"");
        out.write_all(&head)?;
        let mut pieces = Pieces::new(out, true);
        let shown = write_display(self.reply, &mut pieces);
        pieces.finish(shown)?;
        out.write_all(b"\",\"reply_base64\":\"")?;
        write_base64(self.reply, out)?;
        out.write_all(b"\"}\n")
    }
}

/// Writes the textbook line for a successful exchange (with several targets, after the
/// target); with `--connect-only`, `Connected to ADDRESS`.
pub fn write_message(
    out: &mut impl io::Write,
    target: Option<&str>,
    report: &Report,
    connect_only: bool,
) -> io::Result<()> {
    if let Some(t) = target {
        write!(out, "{t}: ")?;
    }
    if connect_only {
        let addr = report.addr.map_or_else(String::new, |a| a.to_string());
        return writeln!(out, "Connected to {addr}");
    }
    out.write_all(b"Message from server: ")?;
    let mut pieces = Pieces::new(out, false);
    let shown = write_display(&report.reply, &mut pieces);
    pieces.finish(shown)?;
    out.write_all(b"\n")
}

/// Gathers text written with [`fmt::Write`] into pieces of [`PIECE`] bytes and writes each
/// to `out`, as JSON string content when `json` (quote, backslash and any control
/// character escaped).
struct Pieces<'w, W: io::Write> {
    out: &'w mut W,
    json: bool,
    buf: String,
    /// The first write error, which stopped the writing.
    error: Option<io::Error>,
}

impl<'w, W: io::Write> Pieces<'w, W> {
    fn new(out: &'w mut W, json: bool) -> Pieces<'w, W> {
        Pieces {
            out,
            json,
            buf: String::with_capacity(PIECE + 64),
            error: None,
        }
    }

    fn flush(&mut self) -> fmt::Result {
        if let Err(e) = self.out.write_all(self.buf.as_bytes()) {
            self.error = Some(e);
            return Err(fmt::Error);
        }
        self.buf.clear();
        Ok(())
    }

    /// Writes what is left, and says how the writing went.
    fn finish(mut self, written: fmt::Result) -> io::Result<()> {
        if written.is_ok() {
            let _ = self.flush();
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<W: io::Write> fmt::Write for Pieces<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !self.json && s.len() >= PIECE {
            // A long clean run (most of a large text reply comes as one) goes out as it
            // is, never gathered into a copy.
            self.flush()?;
            if let Err(e) = self.out.write_all(s.as_bytes()) {
                self.error = Some(e);
                return Err(fmt::Error);
            }
            return Ok(());
        }
        if !self.json {
            self.buf.push_str(s);
        } else {
            for c in s.chars() {
                match c {
                    '"' => self.buf.push_str("\\\""),
                    '\\' => self.buf.push_str("\\\\"),
                    '\t' => self.buf.push_str("\\t"),
                    c if (c as u32) < 0x20 => write!(self.buf, "\\u{:04x}", c as u32)?,
                    c => self.buf.push(c),
                }
                if self.buf.len() >= PIECE {
                    self.flush()?;
                }
            }
        }
        if self.buf.len() >= PIECE {
            self.flush()?;
        }
        Ok(())
    }
}

/// Base64 (RFC 4648, the standard alphabet, padded) of `bytes`, written in pieces. A few
/// lines here rather than a crate: this is its only use, and written by hand it streams.
pub fn write_base64(bytes: &[u8], out: &mut impl io::Write) -> io::Result<()> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut buf = Vec::with_capacity(PIECE / 3 * 4 + 4);
    // Whole groups of three bytes per piece, so that only the last piece is padded.
    for piece in bytes.chunks(PIECE / 3 * 3) {
        buf.clear();
        for group in piece.chunks(3) {
            let b = [group[0], *group.get(1).unwrap_or(&0), *group.get(2).unwrap_or(&0)];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
                buf.push(if i <= group.len() {
                    ALPHABET[(n >> shift & 63) as usize]
                } else {
                    b'='
                });
            }
        }
        out.write_all(&buf)?;
    }
    Ok(())
}

/// The stderr line for a failed exchange, without the program's name: the error, after
/// the target when there are several, and the attempts and their time when `--wait` gave
/// up.
pub fn error_line(target: Option<&str>, report: &Report, wait: Option<Duration>) -> Option<String> {
    let failure = report.outcome.as_ref().err()?;
    let note = wait.map_or(String::new(), |_| attempts_note(report));
    Some(match target {
        Some(t) => format!("{t}: {failure}{note}\n"),
        None => format!("{failure}{note}\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Failure;
    use hello_proto::{Cause, Error, Step};

    fn report(ok: bool) -> Report {
        Report {
            addr: Some("127.0.0.1:9190".parse().unwrap()),
            local: ok.then(|| "127.0.0.1:40000".parse().unwrap()),
            sent: 0,
            reply: if ok {
                b"Hello World!\0".to_vec()
            } else {
                Vec::new()
            },
            attempts: 3,
            waited: Duration::from_millis(150),
            elapsed: Duration::from_millis(281),
            connect: ok.then_some(Duration::from_micros(80)),
            first_byte: ok.then_some(Duration::from_micros(120)),
            total: Duration::from_micros(130),
            outcome: if ok {
                Ok(())
            } else {
                Err(Failure::Step(Error::new(
                    Step::Connect,
                    "127.0.0.1:9190",
                    Cause::Os(std::io::Error::from_raw_os_error(111)),
                )))
            },
        }
    }

    #[test]
    fn the_json_object_has_every_field_and_the_failure_only_on_failure() {
        let v = json(&Json::of("localhost:9190", false, &report(true)));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "target",
            "address",
            "local",
            "protocol",
            "sent",
            "received",
            "reply",
            "reply_base64",
            "elapsed_us",
            "ok",
            "attempts",
            "waited_us",
            "connect_us",
            "first_byte_us",
            "total_us",
        ];
        let mut got = keys.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(v["target"], "localhost:9190");
        assert_eq!(v["local"], "127.0.0.1:40000");
        assert_eq!(v["reply"], "Hello World!");
        assert_eq!(v["reply_base64"], "SGVsbG8gV29ybGQhAA==");
        assert_eq!(v["elapsed_us"], 281_000);
        assert_eq!(
            (v["received"].as_u64(), v["attempts"].as_u64()),
            (Some(13), Some(3))
        );
        assert_eq!(
            (v["connect_us"].as_u64(), v["total_us"].as_u64()),
            (Some(80), Some(130))
        );
        assert_eq!(v["protocol"], "tcp");

        let failed = report(false);
        let v = json(&Json::of("x:1", true, &failed));
        assert_eq!(v["ok"], false);
        assert_eq!(v["step"], "connect()");
        assert_eq!(v["error"], "Connection refused (os error 111)");
        assert!(v["local"].is_null() && v["first_byte_us"].is_null());
        assert_eq!(v["protocol"], "udp");
    }

    fn json(j: &Json<'_>) -> serde_json::Value {
        let mut line = Vec::new();
        j.write(&mut line).unwrap();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        assert!(line.ends_with(b"\n"));
        serde_json::from_slice(&line).unwrap()
    }

    fn message(target: Option<&str>, report: &Report, connect_only: bool) -> String {
        let mut line = Vec::new();
        write_message(&mut line, target, report, connect_only).unwrap();
        String::from_utf8(line).unwrap()
    }

    #[test]
    fn the_reply_fields_carry_the_display_form_and_the_exact_bytes() {
        let mut r = report(true);
        // Every byte value, a quote, a backslash, a tab, invalid UTF-8, a reply longer than
        // a piece, and every padding of base64.
        for reply in [
            (0..=255u8).collect::<Vec<u8>>(),
            b"\"quoted\"\\\t\xff\xfe".to_vec(),
            vec![b'z'; PIECE * 2 + 7],
            b"a".to_vec(),
            b"ab".to_vec(),
            b"abc".to_vec(),
            Vec::new(),
        ] {
            r.reply = reply;
            let v = json(&Json::of("t:1", false, &r));
            assert_eq!(v["reply"], hello_proto::wire::display_reply(&r.reply));
            assert_eq!(v["reply_base64"], base64(&r.reply));
            assert_eq!(v["received"], r.reply.len());
            assert_eq!(
                message(None, &r, false),
                format!(
                    "Message from server: {}\n",
                    hello_proto::wire::display_reply(&r.reply)
                )
            );
        }
    }

    fn base64(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_base64(bytes, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn base64_is_rfc_4648s_and_the_same_in_pieces() {
        // RFC 4648, section 10.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/", "the last two letters");
        // Written a piece at a time, as one: the pieces hold whole groups of three.
        let long: Vec<u8> = (0..PIECE * 2 + 7).map(|i| (i * 7 % 256) as u8).collect();
        let piece = PIECE / 3 * 3;
        let whole = base64(&long);
        assert_eq!(whole.len(), long.len().div_ceil(3) * 4);
        assert_eq!(&whole[..piece / 3 * 4], base64(&long[..piece]));
        assert_eq!(&whole[piece / 3 * 4..], base64(&long[piece..]));
    }

    #[test]
    fn lines_name_the_target_only_when_there_are_several() {
        assert_eq!(
            message(None, &report(true), false),
            "Message from server: Hello World!\n"
        );
        assert_eq!(
            message(Some("a:1"), &report(true), false),
            "a:1: Message from server: Hello World!\n"
        );
        assert_eq!(
            message(Some("a:1"), &report(true), true),
            "a:1: Connected to 127.0.0.1:9190\n"
        );
        assert_eq!(error_line(None, &report(true), None), None);
        assert_eq!(
            error_line(Some("a:1"), &report(false), Some(Duration::from_secs(2))).unwrap(),
            "a:1: connect() error: 127.0.0.1:9190: Connection refused (os error 111); 3 attempts in 281ms\n"
        );
    }
}
