//! dbaudit.toml and waiver files: any text gives a config or located errors.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dbaudit::config::Config::parse(text, Path::new("fuzz.toml"));
    }
});
