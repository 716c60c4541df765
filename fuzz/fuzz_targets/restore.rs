//! RESTORE takes its payload from the client: the RDB decoder must never panic, hang or
//! allocate beyond what the payload backs, whatever the bytes. The checksum is skipped so the
//! fuzzer's bytes reach the decoder; whatever decodes must dump and restore again to a value
//! of the same type and size.
#![no_main]

use berth::rdb::{self, DecodeOptions, EncodeOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut payload = data.to_vec();
    // A valid footer (RDB version 10, checksum skipped) so every input reaches the decoder.
    payload.extend_from_slice(&[10, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let d = DecodeOptions::default();
    if let Ok(v) = rdb::restore(&payload, true, &d) {
        let o = EncodeOptions::default();
        let again = rdb::dump(&v, &o);
        let back = rdb::restore(&again, false, &d).expect("a dumped value restores");
        assert_eq!(back.type_name(), v.type_name());
        assert_eq!(back.len(), v.len());
    }
});
