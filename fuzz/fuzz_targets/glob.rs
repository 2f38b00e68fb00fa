//! The wildcard matcher: never panics, and agrees with a simple recursive
//! reference on short inputs.
#![no_main]
use libfuzzer_sys::fuzz_target;

/// The textbook dynamic-programming matcher: obviously correct and
/// O(len(p) × len(t)). (A plain recursive reference was exponential in the
/// number of `*` and made the fuzzer time out on the reference itself.)
fn reference(p: &[char], t: &[char]) -> bool {
    // m[i][j]: p[..i] matches t[..j].
    let mut m = vec![vec![false; t.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        m[i][0] = m[i - 1][0] && p[i - 1] == '*';
        for j in 1..=t.len() {
            m[i][j] = match p[i - 1] {
                '*' => m[i - 1][j] || m[i][j - 1],
                '?' => m[i - 1][j - 1],
                c => m[i - 1][j - 1] && c == t[j - 1],
            };
        }
    }
    m[p.len()][t.len()]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, subject) = text.split_once('\n').unwrap_or((text, ""));
    let got = dbaudit::glob::matches(pattern, subject);
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), subject.chars().collect());
    if p.len() <= 64 && t.len() <= 256 {
        assert_eq!(
            got,
            reference(&p, &t),
            "pattern {pattern:?} text {subject:?}"
        );
    }
});
