//! Anomaly map files (.npy, TIFF, PNG): decoding any bytes must return a map of finite scores
//! or an error, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((map, _)) = sieve_core::mapio::decode_map("fuzz.map", data) {
        assert_eq!(map.data.len(), map.width * map.height);
        assert!(map.data.iter().all(|v| v.is_finite()));
    }
});
