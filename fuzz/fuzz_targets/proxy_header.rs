//! Fuzz target: the PROXY protocol parser, on any bytes, cut at any point. It must never
//! panic; a header it accepts must be no longer than the input and no longer than the
//! protocol allows; cutting the input before the end of an accepted header must give
//! `Incomplete` (never a different answer), and bytes after an accepted header must not
//! change it; a version 1 header is ASCII, ends with CRLF and fits 107 bytes.
//!
//! Input layout: the whole input is what a connection starts with.

#![no_main]

use hello_proto::proxy::{MAX_HEADER, Parse, V1_MAX, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Parse::Header { header, len } = whole {
        assert!(len <= data.len() && len <= MAX_HEADER, "{len} of {}", data.len());
        if header.version == 1 {
            assert!(len <= V1_MAX && data[..len].ends_with(b"\r\n") && data[..len].is_ascii());
        }
        for cut in 0..len {
            assert_eq!(parse(&data[..cut]), Parse::Incomplete, "cut at {cut}");
        }
        let mut more = data[..len].to_vec();
        more.extend_from_slice(b"trailing bytes");
        assert_eq!(parse(&more), whole, "bytes after the header changed it");
    }
    // However long the input, a decision never needs more than MAX_HEADER bytes.
    if data.len() > MAX_HEADER {
        assert_ne!(parse(&data[..MAX_HEADER + 1]), Parse::Incomplete);
    }
});
