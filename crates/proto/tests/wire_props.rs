//! Property tests of the echo framing (docs/contract.md#the-echo-service): `EchoRequest`,
//! the datagram reply and `display_reply`, each held to the simple whole-input model in
//! `reference/mod.rs`.

mod reference;
mod strategies;

use hello_proto::wire::{DEFAULT_MAX_REQUEST, EchoRequest, Progress};
use proptest::prelude::*;
use proptest::sample::Index;
use reference::{Outcome, Prefixes, check_datagram, check_display, check_stream, message, stream_outcome};
use strategies::{any_limit, any_piece, wire_input};

/// Cuts `input` at the given points (duplicates give empty pieces, which are fed too).
fn split<'a>(input: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for point in points {
        pieces.push(&input[start..point]);
        start = point;
    }
    pieces.push(&input[start..]);
    pieces
}

proptest! {
    /// However the request is cut, the answer is the model's, and the same as when it
    /// arrives in one piece or one byte at a time.
    #[test]
    fn every_split_gives_the_reference_reply(
        input in wire_input(),
        cuts in prop::collection::vec(any::<Index>(), 0..8),
        limit in any_limit(),
    ) {
        let expected = stream_outcome(&input, limit);
        let split_answer = check_stream(limit, &split(&input, &cuts));
        let whole_answer = check_stream(limit, &[&input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let bytewise_answer = check_stream(limit, &bytes);
        prop_assert_eq!(&split_answer, &expected);
        prop_assert_eq!(&whole_answer, &split_answer);
        prop_assert_eq!(&bytewise_answer, &split_answer);
    }

    /// With a small limit, the answer is `TooLong` exactly when the message is longer than
    /// the limit, and `buffered()` stays within `limit + 1` at every step (checked inside
    /// `check_stream`).
    #[test]
    fn too_long_exactly_when_the_message_exceeds_the_limit(
        input in wire_input(),
        cuts in prop::collection::vec(any::<Index>(), 0..8),
        limit in 0usize..40,
    ) {
        let answer = check_stream(limit, &split(&input, &cuts));
        let too_long = matches!(answer, Outcome::TooLong(_));
        prop_assert_eq!(too_long, message(&input).0.len() > limit);
    }

    /// Once the framer has answered, whatever else arrives, and any number of `finish()`
    /// calls, only get `Done`.
    #[test]
    fn after_the_answer_everything_is_done(
        input in wire_input(),
        limit in any_limit(),
        later in prop::collection::vec(prop::collection::vec(any_piece(), 0..8), 0..6),
    ) {
        let mut framer = EchoRequest::new(limit);
        let first = match framer.feed(&input) {
            Progress::NeedMore => framer.finish(),
            answer => answer,
        };
        prop_assert!(matches!(first, Progress::Reply(_) | Progress::TooLong(_)), "{:?}", first);
        for pieces in &later {
            prop_assert_eq!(framer.feed(&pieces.concat()), Progress::Done);
            prop_assert_eq!(framer.finish(), Progress::Done);
        }
        prop_assert_eq!(framer.finish(), Progress::Done);
    }

    /// `display_reply` never panics and always gives one clean line (see `check_display`),
    /// on arbitrary bytes and on real replies.
    #[test]
    fn display_reply_gives_one_clean_line(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            wire_input(),
        ],
        limit in any_limit(),
    ) {
        check_display(&bytes);
        match stream_outcome(&bytes, limit) {
            Outcome::Reply(reply) | Outcome::TooLong(reply) => check_display(&reply),
        }
    }

    /// The datagram reply (and `datagram_message`) agree with the model for any datagram and
    /// limit; the hello service answers every datagram with its greeting.
    #[test]
    fn datagram_reply_matches_the_reference(
        datagram in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            wire_input(),
        ],
        limit in any_limit(),
    ) {
        check_datagram(limit, &datagram);
    }
}

/// The model itself gives the contract's examples (docs/contract.md#the-echo-service), so the
/// properties above compare the framer with the contract and not with a second copy of a
/// mistake.
#[test]
fn the_model_gives_the_spec_examples() {
    let reply = |input: &[u8]| stream_outcome(input, DEFAULT_MAX_REQUEST);
    assert_eq!(reply(b"hello\0"), Outcome::Reply(b"5 : hello\0".to_vec()));
    assert_eq!(reply(b"hi\n"), Outcome::Reply(b"2 : hi\n".to_vec()));
    assert_eq!(
        reply("한글\0".as_bytes()),
        Outcome::Reply("6 : 한글\0".as_bytes().to_vec())
    );
    assert_eq!(reply(b"\0"), Outcome::Reply(b"0 : \0".to_vec()));
    assert_eq!(reply(b"hi\r\nrest"), Outcome::Reply(b"2 : hi\n".to_vec()));
    assert_eq!(reply(b"a\rb"), Outcome::Reply(b"3 : a\rb\0".to_vec()));
    assert_eq!(
        stream_outcome(b"123456789\0", 8),
        Outcome::TooLong(b"error: message longer than 8 bytes\0".to_vec())
    );
    assert_eq!(
        stream_outcome(b"12345678\r\n", 8),
        Outcome::Reply(b"8 : 12345678\n".to_vec())
    );
}

/// The model's view of when an answer is due: a request cut just before its CRLF's LF can
/// still fit (so the framer must wait, and does), while one byte over the limit without a CR
/// cannot.
#[test]
fn the_model_knows_when_an_answer_is_due() {
    let crlf = Prefixes::new(b"12345678\r\n");
    assert!(!crlf.terminated_within(9));
    assert_eq!(crlf.shortest_message(9), 8);
    assert!(crlf.terminated_within(10));
    assert_eq!(crlf.shortest_message(10), 8);
    let eof = Prefixes::new(b"123456789");
    assert_eq!(eof.shortest_message(9), 9);
    let early = Prefixes::new(b"12\r\n3456789");
    assert_eq!(early.shortest_message(3), 2);
    assert_eq!(early.shortest_message(11), 2);
    let mut framer = EchoRequest::new(8);
    assert_eq!(framer.feed(b"12345678\r"), Progress::NeedMore);
    assert_eq!(framer.feed(b"\n"), Progress::Reply(b"8 : 12345678\n".to_vec()));
}
