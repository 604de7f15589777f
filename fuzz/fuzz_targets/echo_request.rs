//! Fuzz target: the streaming echo framer, `EchoRequest`, cut into pieces the fuzzer chooses
//! and held to the whole-input model shared with the property tests.
//!
//! Input layout: byte 0 chooses the limit (0 to 253 as is, 254 the default
//! `DEFAULT_MAX_REQUEST`, 255 `usize::MAX`); the low three bits of byte 1 say how many of the
//! following bytes are piece sizes (used in turn, 0 giving an empty piece); the rest is the
//! stream. `check_stream` panics if the answer differs from the model, if `buffered()` ever
//! exceeds the limit plus one, if an answer comes too early or too late, or if anything but
//! `Done` follows the answer.

#![no_main]

use hello_proto::wire::DEFAULT_MAX_REQUEST;
use libfuzzer_sys::fuzz_target;

// The model lives with the property tests so that both check the same rules; this target
// uses only its stream half, hence the allowance for the rest.
#[path = "../../crates/proto/tests/reference/mod.rs"]
#[allow(dead_code)]
mod reference;

/// Cuts `stream` into pieces of the given sizes, used in turn. Empty pieces are bounded in
/// number, and whatever is left after that is fed as a last piece.
fn cut<'a>(stream: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    if sizes.is_empty() {
        return vec![stream];
    }
    let most = stream.len() + sizes.len();
    let mut pieces = Vec::new();
    let mut rest = stream;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() || pieces.len() >= most {
            break;
        }
        let (piece, after) = rest.split_at(usize::from(size).min(rest.len()));
        pieces.push(piece);
        rest = after;
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

fuzz_target!(|data: &[u8]| {
    let [limit_byte, split_byte, rest @ ..] = data else {
        return;
    };
    let limit = match limit_byte {
        254 => DEFAULT_MAX_REQUEST,
        255 => usize::MAX,
        &byte => usize::from(byte),
    };
    let (sizes, stream) = rest.split_at(usize::from(split_byte & 7).min(rest.len()));
    let pieces = cut(stream, sizes);
    let in_pieces = reference::check_stream(limit, &pieces);
    let in_one = reference::check_stream(limit, &[stream]);
    assert_eq!(in_pieces, in_one, "the answer depends on how the stream was cut");
});
