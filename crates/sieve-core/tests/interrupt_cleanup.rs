//! What the Ctrl-C handler relies on: removing every temporary path at once, and no rename into
//! place after that. A test binary of its own, because the removal reaches every temporary path
//! of the process, those of other tests included.

use std::sync::mpsc;
use std::thread;

use sieve_core::fsutil::{remove_temporaries, write_atomic, Temporary};

#[test]
fn removal_leaves_outputs_and_blocks_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    write_atomic(&report, b"good").unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("filter.json"), b"good").unwrap();

    // A new model and report half written when the interruption comes.
    let new_model = Temporary::beside(&model);
    std::fs::create_dir(new_model.path()).unwrap();
    std::fs::write(new_model.path().join("filter.json"), b"half").unwrap();
    let new_report = Temporary::beside(&report);
    std::fs::write(new_report.path(), b"ha").unwrap();

    let guard = remove_temporaries();
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["model", "report.json"]);
    assert_eq!(std::fs::read(&report).unwrap(), b"good");
    assert_eq!(std::fs::read(model.join("filter.json")).unwrap(), b"good");

    // While the guard is held, a publish waits. It must not have happened when the guard is
    // dropped, and since its temporary was removed it then fails, leaving the old model.
    let (sender, receiver) = mpsc::channel();
    let publisher = thread::spawn(move || {
        let result = new_model.publish(&model);
        sender.send(result.is_err()).unwrap();
    });
    assert!(
        receiver.try_recv().is_err(),
        "published while the guard was held"
    );
    drop(guard);
    assert!(
        receiver.recv().unwrap(),
        "publish of a removed temporary failed"
    );
    publisher.join().unwrap();
    drop(new_report);
    assert_eq!(
        std::fs::read(dir.path().join("model/filter.json")).unwrap(),
        b"good"
    );
}
