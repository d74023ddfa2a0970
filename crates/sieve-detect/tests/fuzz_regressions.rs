//! Replays the legacy checkpoint fuzz seed and every input that once crashed that fuzz target
//! (kept in `fuzz/regressions/legacy_checkpoint/`, when there are any).

use std::path::{Path, PathBuf};

use sieve_detect::pth::parse_legacy_state_dict;

fn inputs(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(folder)
        .join("legacy_checkpoint");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn seed_checkpoint_parses() {
    let files = inputs("seeds");
    assert_eq!(files.len(), 1);
    let tensors = parse_legacy_state_dict(&std::fs::read(&files[0]).unwrap()).unwrap();
    let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["weight", "count"]);
    let weight = tensors[0].1.to_vec2::<f32>().unwrap();
    assert_eq!(weight, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]);
    assert_eq!(tensors[1].1.to_scalar::<i64>().unwrap(), 42);
}

#[test]
fn crashes_are_errors() {
    for path in inputs("regressions") {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            parse_legacy_state_dict(&bytes).is_err(),
            "{} parsed",
            path.display()
        );
    }
}
