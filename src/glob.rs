//! Wildcard matching for user-supplied patterns (waiver resources, SARIF
//! location mappings, developer role globs, IAM actions and resources): `*`
//! matches any run of characters, `?` exactly one. No regex and no
//! backtracking: the pattern is split on `*`; the first segment must match
//! at the start, the last at the end, and every middle segment is found
//! leftmost, in order, with the bit-parallel shift-and search. That is
//! correct for `*`-separated segments (a star absorbs whatever lies between
//! two leftmost matches) and runs in time linear in the text for segments of
//! up to 64 characters (longer segments fall back to a direct search).

pub fn matches(pattern: &str, text: &str) -> bool {
    // ARNs, action names and tags are ASCII: match bytes without allocating.
    // Otherwise match chars, so that `?` stands for one character.
    if pattern.is_ascii() && text.is_ascii() {
        if !pattern.contains('?') {
            return matches_stars(pattern, text);
        }
        return matches_slice(pattern.as_bytes(), text.as_bytes());
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches_slice(&p, &t)
}

/// Patterns with `*` only (the common case for ARNs and actions): the
/// standard library's substring search finds each middle segment, leftmost.
fn matches_stars(pattern: &str, text: &str) -> bool {
    let mut segs = pattern.split('*');
    let first = segs.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let mut segs: Vec<&str> = segs.collect();
    let Some(last) = segs.pop() else {
        // No star: the whole text must be the pattern.
        return rest.is_empty();
    };
    for seg in segs {
        match rest.find(seg) {
            Some(i) => rest = &rest[i + seg.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

trait Sym: Copy + PartialEq + Eq + std::hash::Hash {
    fn star(self) -> bool;
    fn question(self) -> bool;
    /// The byte, for the table-driven search of ASCII input.
    fn byte(self) -> Option<u8>;
}

impl Sym for u8 {
    fn star(self) -> bool {
        self == b'*'
    }
    fn question(self) -> bool {
        self == b'?'
    }
    fn byte(self) -> Option<u8> {
        Some(self)
    }
}

impl Sym for char {
    fn star(self) -> bool {
        self == '*'
    }
    fn question(self) -> bool {
        self == '?'
    }
    fn byte(self) -> Option<u8> {
        None
    }
}

/// A segment (no `*`) equals `t` position by position.
fn seg_eq<T: Sym>(seg: &[T], t: &[T]) -> bool {
    seg.len() == t.len() && seg.iter().zip(t).all(|(p, c)| p.question() || p == c)
}

/// End (exclusive) of the leftmost occurrence of `seg` in `t`.
fn find_end<T: Sym>(seg: &[T], t: &[T]) -> Option<usize> {
    if seg.is_empty() {
        return Some(0);
    }
    if seg.len() > 64 {
        return (0..=t.len().checked_sub(seg.len())?)
            .find(|&i| seg_eq(seg, &t[i..i + seg.len()]))
            .map(|i| i + seg.len());
    }
    // Shift-and: bit i of `d` says seg[..=i] ends at the current position;
    // the masks say which positions accept a symbol, computed once.
    let any: u64 = seg
        .iter()
        .enumerate()
        .filter(|(_, p)| p.question())
        .fold(0, |m, (i, _)| m | 1 << i);
    let mut bytes = [any; 256];
    let mut others: std::collections::HashMap<T, u64> = std::collections::HashMap::new();
    for (i, p) in seg.iter().enumerate().filter(|(_, p)| !p.question()) {
        match p.byte() {
            Some(b) => bytes[usize::from(b)] |= 1 << i,
            None => *others.entry(*p).or_insert(any) |= 1 << i,
        }
    }
    let last = 1u64 << (seg.len() - 1);
    let mut d: u64 = 0;
    for (j, c) in t.iter().enumerate() {
        let accept = match c.byte() {
            Some(b) => bytes[usize::from(b)],
            None => others.get(c).copied().unwrap_or(any),
        };
        d = ((d << 1) | 1) & accept;
        if d & last != 0 {
            return Some(j + 1);
        }
    }
    None
}

fn matches_slice<T: Sym>(p: &[T], t: &[T]) -> bool {
    let mut segs = p.split(|c| c.star());
    let first = segs.next().unwrap_or_default();
    let rest: Vec<&[T]> = segs.collect();
    let Some((last, middle)) = rest.split_last() else {
        // No star: the whole text, position by position.
        return seg_eq(first, t);
    };
    if first.len() + last.len() > t.len()
        || !seg_eq(first, &t[..first.len()])
        || !seg_eq(last, &t[t.len() - last.len()..])
    {
        return false;
    }
    let window = &t[first.len()..t.len() - last.len()];
    let mut pos = 0;
    for seg in middle {
        match find_end(seg, &window[pos..]) {
            Some(end) => pos += end,
            None => return false,
        }
    }
    true
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
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches(
            "AWSReservedSSO_Developer*",
            "AWSReservedSSO_Developer_0123abcd"
        ));
        assert!(!matches("abc", "abcd"));
        assert!(matches("*.*.*", "a.b.c"));
        assert!(matches("a**b", "ab"));
        assert!(
            !matches("ab*ba", "aba"),
            "prefix and suffix may not overlap"
        );
        assert!(matches("*a?c*", "xxabcxx"));
        // A literal `*` in the text does not stop `*` being a wildcard.
        assert!(matches("*?*r\0*", "ar\x01\0\0*?*r\0*\nar\x01\0\0)X"));
        assert!(matches("a*b", "a*xb"));
        // Non-ASCII: `?` is one character, not one byte.
        assert!(matches("caf?", "café"));
        assert!(matches("é*", "été"));
        // Segments longer than 64 characters.
        let long = "x".repeat(70);
        assert!(matches(&format!("*{long}*"), &format!("ab{long}cd")));
        assert!(!matches(&format!("*{long}y*"), &format!("ab{long}cd")));
    }

    #[test]
    fn adversarial_patterns_stay_fast() {
        // Exponential for a backtracking matcher; linear here.
        let text = "a".repeat(200_000);
        let pattern = format!("{}b", "*a".repeat(2_000));
        assert!(!matches(&pattern, &text));
    }
}
