//! The RESP request parser must never panic, loop or over-allocate on any input, whether the
//! bytes arrive at once or split at arbitrary points.
#![no_main]

use berth::protocol::request::{Limits, Parse, Parser};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().copied().unwrap_or(1).max(1) as usize;
    let mut parser = Parser::new(true);
    let mut buf = BytesMut::new();
    let limits = Limits { max_bulk_len: 1 << 20, max_multibulk_len: 1 << 20 };
    for chunk in data.chunks(split) {
        buf.extend_from_slice(chunk);
        loop {
            match parser.parse(&mut buf, &limits) {
                Parse::Command(_) => continue,
                Parse::Incomplete => break,
                Parse::Error(_) => return,
            }
        }
    }
});
