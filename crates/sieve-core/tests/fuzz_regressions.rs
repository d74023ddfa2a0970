//! Replays the fuzz seeds and every input that once crashed a fuzz target (kept in
//! `fuzz/regressions/<target>/`), so that the fixes stay fixed without a fuzzer.

use std::path::{Path, PathBuf};

use sieve_core::mapio::{decode_map, MapFormat, MapIoError};
use sieve_core::prior::Prior;

/// Files of `fuzz/<folder>/<target>/`, sorted.
fn inputs(folder: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(folder)
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn map_seeds_decode_as_their_format() {
    let files = inputs("seeds", "map_reader");
    assert!(files.len() >= 6);
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let result = decode_map(&path, &bytes);
        if name.starts_with("i8") {
            assert!(matches!(result, Err(MapIoError::Dtype { .. })), "{name}");
            continue;
        }
        let (map, format) = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = match path.extension().unwrap().to_str().unwrap() {
            "npy" => MapFormat::Npy,
            "tiff" => MapFormat::Tiff,
            _ if name.starts_with("gray16") => MapFormat::Png16,
            _ => MapFormat::Png8,
        };
        assert_eq!(format, expected, "{name}");
        assert_eq!(map.data.len(), map.width * map.height, "{name}");
    }
}

#[test]
fn map_crashes_are_errors() {
    for path in inputs("regressions", "map_reader") {
        let bytes = std::fs::read(&path).unwrap();
        let err = decode_map(&path, &bytes).unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn prior_seeds_parse() {
    for path in inputs("seeds", "prior_parser") {
        let text = std::fs::read_to_string(&path).unwrap();
        text.parse::<Prior>()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
