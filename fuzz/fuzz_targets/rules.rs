//! Rule files: TOML, CEL conditions, message templates, field checking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let file = dbaudit::rules::RuleFile {
            path: PathBuf::from("fuzz.toml"),
            text: text.to_string(),
            builtin: false,
        };
        let _ = dbaudit::rules::load_files(&[file], &[]);
    }
});
