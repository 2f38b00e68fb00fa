//! The wildcard matcher: never panics, and agrees with a simple recursive
//! reference on short inputs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fn reference(p: &[char], t: &[char]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some('*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
        (Some('?'), Some(_)) => reference(&p[1..], &t[1..]),
        (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, subject) = text.split_once('\n').unwrap_or((text, ""));
    let got = dbaudit::glob::matches(pattern, subject);
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), subject.chars().collect());
    if p.len() <= 12 && t.len() <= 24 {
        assert_eq!(
            got,
            reference(&p, &t),
            "pattern {pattern:?} text {subject:?}"
        );
    }
});
