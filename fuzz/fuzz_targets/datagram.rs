//! Fuzz target: the echo and hello services' datagram replies and the client's
//! `display_reply`, held to the model shared with the property tests.
//!
//! Input layout: byte 0 chooses the echo limit (0 to 253 as is, 254 the default
//! `DEFAULT_MAX_REQUEST`, 255 `usize::MAX`); the rest is the datagram. The whole input, the
//! datagram and the model's reply to it are each also shown with `display_reply`, which must
//! give one clean line.

#![no_main]

use hello_proto::wire::DEFAULT_MAX_REQUEST;
use libfuzzer_sys::fuzz_target;

// The model lives with the property tests so that both check the same rules; this target
// uses only its datagram and display half, hence the allowance for the rest.
#[path = "../../crates/proto/tests/reference/mod.rs"]
#[allow(dead_code)]
mod reference;

fuzz_target!(|data: &[u8]| {
    reference::check_display(data);
    let Some((limit_byte, datagram)) = data.split_first() else {
        return;
    };
    let limit = match limit_byte {
        254 => DEFAULT_MAX_REQUEST,
        255 => usize::MAX,
        &byte => usize::from(byte),
    };
    reference::check_datagram(limit, datagram);
    reference::check_display(datagram);
    reference::check_display(&reference::datagram_outcome(datagram, limit));
});
