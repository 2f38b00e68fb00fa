//! Wildcard matching for user-supplied patterns (waiver resources, SARIF
//! location mappings, developer role globs): `*` matches any run of
//! characters, `?` exactly one. No regex: the greedy two-pointer algorithm
//! keeps a single backtrack point, so time is O(len(pattern) × len(text)) in
//! the worst case and never exponential, whatever the input.

pub fn matches(pattern: &str, text: &str) -> bool {
    // ARNs, action names and tags are ASCII: match bytes without allocating.
    // Otherwise match chars, so that `?` stands for one character.
    if pattern.is_ascii() && text.is_ascii() {
        return matches_slice(pattern.as_bytes(), text.as_bytes());
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches_slice(&p, &t)
}

fn matches_slice<T: Copy + PartialEq + Wild>(p: &[T], t: &[T]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<usize> = None;
    let mut mark = 0usize;
    while ti < t.len() {
        // The wildcard test comes first: a `*` in the pattern is a wildcard
        // even where the text has a literal `*` (found by the glob fuzz
        // target, which compares with a recursive reference).
        if pi < p.len() && p[pi].star() {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi].question() || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi].star() {
        pi += 1;
    }
    pi == p.len()
}

trait Wild {
    fn star(self) -> bool;
    fn question(self) -> bool;
}

impl Wild for u8 {
    fn star(self) -> bool {
        self == b'*'
    }
    fn question(self) -> bool {
        self == b'?'
    }
}

impl Wild for char {
    fn star(self) -> bool {
        self == '*'
    }
    fn question(self) -> bool {
        self == '?'
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards() {
        assert!(matches(
            "arn:aws:rds:*:222222222222:cluster:prod-*",
            "arn:aws:rds:eu-west-1:222222222222:cluster:prod-orders"
        ));
        assert!(!matches(
            "arn:aws:rds:*:222222222222:cluster:prod-*",
            "arn:aws:rds:eu-west-1:111111111111:cluster:prod-orders"
        ));
        assert!(matches("*", ""));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches(
            "AWSReservedSSO_Developer*",
            "AWSReservedSSO_Developer_0123abcd"
        ));
        assert!(!matches("abc", "abcd"));
        assert!(matches("*.*.*", "a.b.c"));
        // A literal `*` in the text does not stop `*` being a wildcard.
        assert!(matches("*?*r\0*", "ar\x01\0\0*?*r\0*\nar\x01\0\0)X"));
        assert!(matches("a*b", "a*xb"));
        // Non-ASCII: `?` is one character, not one byte.
        assert!(matches("caf?", "café"));
        assert!(matches("é*", "été"));
    }

    #[test]
    fn adversarial_patterns_stay_fast() {
        // Exponential for a backtracking regex engine; here it is a few
        // million steps at most.
        let text = "a".repeat(5_000);
        let pattern = format!("{}b", "*a".repeat(200));
        assert!(!matches(&pattern, &text));
    }
}
