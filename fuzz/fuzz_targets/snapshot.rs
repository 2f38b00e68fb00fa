//! Snapshots: loading, then evaluating every built-in rule on what loaded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn rules() -> &'static dbaudit::rules::RuleSet {
    static R: OnceLock<dbaudit::rules::RuleSet> = OnceLock::new();
    R.get_or_init(|| dbaudit::rules::RuleSet::load(&[], &[]).expect("built-in rules load"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(snapshot) = dbaudit::snapshot::Snapshot::parse(text, Path::new("fuzz.json"))
    {
        let config = dbaudit::config::Config::default();
        let _ = dbaudit::evaluate::evaluate(&snapshot, rules(), &config);
    }
});
