//! Legacy (pre-1.6) PyTorch checkpoints: parsing any bytes must return tensors or an error, and
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sieve_detect::pth::parse_legacy_state_dict(data);
});
