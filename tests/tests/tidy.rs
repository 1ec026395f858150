//! Tidy checks on the source tree: every Rust file starts with a `//!`
//! paragraph saying what it is for (STYLE.md §8), and no file outside the
//! one reviewed module uses `unsafe`.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

fn workspace_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in [
        "proto/src",
        "shared/src",
        "controller/src",
        "agent/src",
        "tests/src",
        "tests/tests",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 40,
        "found only {} files; is the walk right?",
        files.len()
    );
    files
}

#[test]
fn every_module_file_starts_with_a_doc_paragraph() {
    let missing: Vec<_> = workspace_files()
        .into_iter()
        .filter(|path| {
            !std::fs::read_to_string(path)
                .unwrap_or_default()
                .starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! paragraph: {missing:#?}"
    );
}

#[test]
fn unsafe_lives_only_in_the_reviewed_module() {
    let offenders: Vec<_> = workspace_files()
        .into_iter()
        .filter(|path| {
            !path.ends_with("agent/src/process.rs") && !path.ends_with("tests/tests/tidy.rs")
        })
        .filter(|path| {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .contains("unsafe {")
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "unsafe outside agent/src/process.rs: {offenders:#?}"
    );
}
