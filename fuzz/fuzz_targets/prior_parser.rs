//! Prior files: parsing and checking any text, then painting a few defects from a prior that
//! passed the checks into a small image. Neither may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sieve_core::prior::Prior;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(prior) = text.parse::<Prior>() else {
        return;
    };
    let image = image::Rgb32FImage::from_pixel(48, 40, image::Rgb([0.5, 0.5, 0.5]));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for _ in 0..4 {
        // A shape larger than the image is an error, not a panic.
        let _ = sieve_core::synth::paint(&image, &prior, &mut rng);
    }
});
