//! One test per IAM corpus case (tests/iam_cases/*.json), named after its
//! file: `cargo test --test iam_corpus absent-` runs the absent-key cases.

mod support;

use support::iam_cases::{IamCase, case_files};

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let files = case_files();
    assert!(files.len() >= 120, "only {} cases", files.len());
    let trials = files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            libtest_mimic::Trial::test(name, move || {
                IamCase::load(&path)
                    .check()
                    .map_err(|e| format!("{}: {e}", path.display()).into())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
