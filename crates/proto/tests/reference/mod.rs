//! A deliberately simple model of the echo framing (docs/contract.md#the-echo-service),
//! written from that description and not from `wire.rs`, and the checks that hold the real
//! framer to it. The property tests (`tests/wire_props.rs`) and the fuzz targets
//! (`fuzz/fuzz_targets/`) share this file, so a finding in one is checked by the same rules
//! as in the other.
//!
//! The model sees the whole input at once, so it has no state to get wrong: the message is
//! everything before the first NUL or LF (a CR right before that LF dropped), or the whole
//! input when neither occurs.

use hello_proto::wire::{
    EchoRequest, Progress, Service, datagram_message, display_reply, escaped_when_shown,
};

/// What ended a request in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A NUL byte.
    Nul,
    /// A LF byte.
    Lf,
    /// The end of the stream: no NUL or LF occurs.
    Eof,
}

/// What the contract requires the server to answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The echo reply.
    Reply(Vec<u8>),
    /// The error reply for a message over the limit.
    TooLong(Vec<u8>),
}

/// Where the first NUL or LF of an input is, if any.
pub fn first_terminator(input: &[u8]) -> Option<usize> {
    input.iter().position(|&byte| byte == 0 || byte == b'\n')
}

/// The message a whole input holds, and what ended it.
pub fn message(input: &[u8]) -> (&[u8], End) {
    match first_terminator(input) {
        None => (input, End::Eof),
        Some(i) if input[i] == 0 => (&input[..i], End::Nul),
        Some(i) => match input[..i].last() {
            Some(b'\r') => (&input[..i - 1], End::Lf),
            _ => (&input[..i], End::Lf),
        },
    }
}

/// A whole input seen from a point part way through it: what is known once its first
/// `seen` bytes have arrived. Everything is worked out from the whole input once, so that
/// each step costs nothing (the fuzz targets feed thousands of tiny pieces).
#[derive(Debug, Clone, Copy)]
pub struct Prefixes<'a> {
    input: &'a [u8],
    first_terminator: Option<usize>,
    message_len: usize,
}

impl<'a> Prefixes<'a> {
    /// The model of this whole input.
    pub fn new(input: &'a [u8]) -> Self {
        Prefixes {
            input,
            first_terminator: first_terminator(input),
            message_len: message(input).0.len(),
        }
    }

    /// Whether the first `seen` bytes already hold a terminator (a NUL or a LF).
    pub fn terminated_within(&self, seen: usize) -> bool {
        self.first_terminator.is_some_and(|i| i < seen)
    }

    /// The shortest the message can still turn out to be once the first `seen` bytes have
    /// arrived, whatever follows: without a terminator yet, a trailing CR may still be
    /// dropped by a LF.
    pub fn shortest_message(&self, seen: usize) -> usize {
        if self.terminated_within(seen) {
            self.message_len
        } else if seen > 0 && self.input[seen - 1] == b'\r' {
            seen - 1
        } else {
            seen
        }
    }
}

/// `"<len> : <msg>"` followed by `end`, written out by hand.
pub fn reply_bytes(msg: &[u8], end: u8) -> Vec<u8> {
    let mut reply = format!("{} : ", msg.len()).into_bytes();
    reply.extend_from_slice(msg);
    reply.push(end);
    reply
}

/// The error reply for a message over `limit` bytes.
pub fn too_long_bytes(limit: usize) -> Vec<u8> {
    format!("error: message longer than {limit} bytes\0").into_bytes()
}

/// What the contract requires as the answer to this whole stream with this limit.
pub fn stream_outcome(input: &[u8], limit: usize) -> Outcome {
    let (msg, end) = message(input);
    if msg.len() > limit {
        return Outcome::TooLong(too_long_bytes(limit));
    }
    let end_byte = match end {
        End::Lf => b'\n',
        End::Nul | End::Eof => 0,
    };
    Outcome::Reply(reply_bytes(msg, end_byte))
}

/// What the contract requires as the reply to one datagram with this limit: the same message
/// rule as a stream, but the reply always ends with NUL.
pub fn datagram_outcome(datagram: &[u8], limit: usize) -> Vec<u8> {
    // The reply must fit one datagram (65,507 bytes): `65498 : ` + 65,498 bytes + NUL.
    let limit = limit.min(65_498);
    let (msg, _) = message(datagram);
    if msg.len() > limit {
        too_long_bytes(limit)
    } else {
        reply_bytes(msg, 0)
    }
}

/// Feeds `pieces` to a fresh [`EchoRequest`] bounded to `limit`, then `finish()` if no answer
/// came yet, and panics at the first step that breaks the model:
///
/// - the answer is exactly [`stream_outcome`] of the concatenated pieces;
/// - `buffered()` never exceeds `limit + 1`;
/// - `NeedMore` only while no terminator has arrived and the message can still fit;
/// - a `Reply` from `feed` only once a terminator has arrived, a `TooLong` only once the
///   message cannot fit any more, and `finish()` is needed only when no terminator came;
/// - every `feed` and `finish` after the answer returns `Done`.
///
/// Returns the answer, so that callers can compare ways of cutting the same input.
pub fn check_stream(limit: usize, pieces: &[&[u8]]) -> Outcome {
    let whole = pieces.concat();
    let expected = stream_outcome(&whole, limit);
    let prefixes = Prefixes::new(&whole);
    let bound = limit.saturating_add(1);
    let mut framer = EchoRequest::new(limit);
    let mut seen = 0;
    let mut answer: Option<Outcome> = None;

    for (step, piece) in pieces.iter().enumerate() {
        let progress = framer.feed(piece);
        if answer.is_some() {
            assert_eq!(progress, Progress::Done, "feed after the answer, piece {step}");
            continue;
        }
        seen += piece.len();
        assert!(
            framer.buffered() <= bound,
            "buffered {} > limit {limit} + 1 after piece {step}",
            framer.buffered()
        );
        match progress {
            Progress::NeedMore => {
                assert!(
                    !prefixes.terminated_within(seen),
                    "NeedMore after a terminator, piece {step}"
                );
                assert!(
                    prefixes.shortest_message(seen) <= limit,
                    "NeedMore although the message cannot fit, piece {step}"
                );
            }
            Progress::Reply(bytes) => {
                assert!(
                    prefixes.terminated_within(seen),
                    "a reply before any terminator, piece {step}"
                );
                answer = Some(Outcome::Reply(bytes));
            }
            Progress::TooLong(bytes) => {
                assert!(
                    prefixes.shortest_message(seen) > limit,
                    "TooLong although the message can still fit, piece {step}"
                );
                answer = Some(Outcome::TooLong(bytes));
            }
            Progress::Done => panic!("Done before any answer, piece {step}"),
        }
    }

    let answer = match answer {
        Some(answer) => {
            assert_eq!(framer.finish(), Progress::Done, "finish after the answer");
            answer
        }
        None => {
            assert!(
                !prefixes.terminated_within(seen),
                "no answer although a terminator arrived"
            );
            let answer = match framer.finish() {
                Progress::Reply(bytes) => Outcome::Reply(bytes),
                Progress::TooLong(bytes) => Outcome::TooLong(bytes),
                other => panic!("finish() at end of stream gave {other:?}"),
            };
            assert!(framer.buffered() <= bound, "buffered past the bound after finish");
            answer
        }
    };
    assert_eq!(answer, expected, "the answer differs from the model");
    assert_eq!(framer.feed(b"more\0\n"), Progress::Done, "feed after the answer");
    assert_eq!(framer.feed(b""), Progress::Done, "empty feed after the answer");
    assert_eq!(framer.finish(), Progress::Done, "second finish after the answer");
    answer
}

/// Checks the echo and hello services' datagram replies, and `datagram_message`, against
/// the model for one datagram.
pub fn check_datagram(limit: usize, datagram: &[u8]) {
    assert_eq!(
        datagram_message(datagram),
        message(datagram).0,
        "datagram message"
    );
    let echo = Service::Echo { max_request: limit };
    assert_eq!(
        &*echo.datagram_reply(datagram),
        datagram_outcome(datagram, limit).as_slice(),
        "echo datagram reply"
    );
    let hello = Service::hello("Hi");
    assert_eq!(&*hello.datagram_reply(datagram), b"Hi\0", "hello datagram reply");
}

/// Checks `display_reply` on arbitrary bytes: it does not panic, its output holds no control
/// character but tab (so no LF, CR or NUL) nor any other character it escapes, trailing NUL,
/// CR and LF bytes are stripped rather than shown, it is empty only when nothing else was
/// received, and clean text passes through unchanged.
pub fn check_display(bytes: &[u8]) {
    let shown = display_reply(bytes);
    assert!(
        shown.chars().all(|c| c == '\t' || !escaped_when_shown(c)),
        "a control character in {shown:?}"
    );
    let kept = bytes.len()
        - bytes
            .iter()
            .rev()
            .take_while(|&&b| matches!(b, 0 | b'\r' | b'\n'))
            .count();
    let stripped = &bytes[..kept];
    assert_eq!(
        shown,
        display_reply(stripped),
        "trailing line-ending bytes were shown"
    );
    assert_eq!(shown.is_empty(), stripped.is_empty(), "emptiness of {shown:?}");
    let clean = std::str::from_utf8(stripped)
        .ok()
        .filter(|text| text.chars().all(|c| c == '\t' || !escaped_when_shown(c)));
    if let Some(text) = clean {
        assert_eq!(shown, text, "clean text was altered");
    }
}
