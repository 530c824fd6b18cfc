//! Replays the fuzzers' saved inputs as ordinary tests: the seeds, the minimized corpus and
//! every input that once crashed a target (`fuzz/regressions/`). No fuzzer is needed here.

use std::path::Path;

#[test]
fn every_saved_fuzz_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, target) in rmq_registrar::fuzzing::TARGETS {
        let mut replayed = 0;
        for kind in ["seeds", "corpus", "regressions"] {
            let Ok(dir) = std::fs::read_dir(root.join(kind).join(name)) else {
                continue;
            };
            for entry in dir {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} fails", path.display());
                replayed += 1;
            }
        }
        assert!(replayed > 0, "{name}: no saved inputs");
        eprintln!("{name}: {replayed} inputs replayed");
    }
}
