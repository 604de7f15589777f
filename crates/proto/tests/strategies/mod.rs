//! Proptest strategies for the bytes a client sends, shared by the property tests of the
//! echo framing (`wire_props.rs`) and of the connection core (`conn_props.rs`).

use hello_proto::wire::DEFAULT_MAX_REQUEST;
use proptest::prelude::*;

/// One piece of an input, biased towards the bytes the framing cares about: NUL, LF, CR,
/// CRLF and multibyte UTF-8, among plain letters and arbitrary bytes.
pub fn any_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        10 => (b'a'..=b'z').prop_map(|b| vec![b]),
        2 => Just(vec![b'\r']),
        1 => Just(vec![0]),
        1 => Just(vec![b'\n']),
        1 => Just(b"\r\n".to_vec()),
        3 => any::<u8>().prop_map(|b| vec![b]),
        3 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
    ]
}

/// One piece that holds neither NUL nor LF, so that a run of them is one long message.
pub fn body_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        10 => (b'a'..=b'z').prop_map(|b| vec![b]),
        2 => Just(vec![b'\r']),
        3 => any::<u8>().prop_map(|b| vec![if b == 0 || b == b'\n' { b'x' } else { b }]),
        3 => any::<char>()
            .prop_map(|c| if c == '\0' || c == '\n' { '한' } else { c })
            .prop_map(|c| c.to_string().into_bytes()),
    ]
}

/// An input stream: either an arbitrary mix of pieces (where a terminator tends to come
/// early), or a terminator-free body of up to about a hundred bytes, then one of the ways a
/// request can end (or none), then trailing bytes that the framer must ignore.
pub fn wire_input() -> impl Strategy<Value = Vec<u8>> {
    let end = prop_oneof![
        Just(Vec::new()),
        Just(vec![0]),
        Just(vec![b'\n']),
        Just(b"\r\n".to_vec()),
        Just(vec![b'\r']),
    ];
    prop_oneof![
        prop::collection::vec(any_piece(), 0..64).prop_map(|pieces| pieces.concat()),
        (
            prop::collection::vec(body_piece(), 0..48),
            end,
            prop::collection::vec(any_piece(), 0..8),
        )
            .prop_map(|(body, end, tail)| [body.concat(), end, tail.concat()].concat()),
    ]
}

/// A limit: mostly small, so that both outcomes are common, sometimes the default or the
/// largest `usize` (where `limit + 1` must not overflow).
pub fn any_limit() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..40,
        1 => Just(DEFAULT_MAX_REQUEST),
        1 => Just(usize::MAX),
    ]
}
