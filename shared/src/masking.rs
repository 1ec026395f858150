//! Masking secret values in text that leaves a task: log lines, stage
//! errors and their evidence. Each value is replaced by [`MASK`], and so
//! are the forms a script is likely to print it in: each line of a
//! multi-line value, the value with its newlines escaped, its base64
//! (standard and URL-safe, at any alignment inside a longer text, and cut
//! into the 76- and 64-column lines `base64` and PEM wrap at), and its hex
//! (whole and in the 60-column lines of `xxd -p`).
//!
//! Both the agent (before a line reaches its spool) and the controller
//! (before a line is stored) mask, so a line is masked even when one of
//! them is older. Values shorter than [`MIN_MASKED`] bytes are refused
//! when a secret is set: masking them would hide ordinary text.

use std::borrow::Cow;
use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

/// What a masked value is replaced with.
pub const MASK: &str = "***";

/// The shortest value (and derived form) that is masked.
pub const MIN_MASKED: usize = 4;

/// Column widths that tools wrap encoded output at: `base64` (76) and PEM
/// (64) for base64, `xxd -p` (60) for hex.
const BASE64_WIDTHS: [usize; 2] = [76, 64];
const HEX_WIDTH: usize = 60;

/// Patterns up to this many bytes in all get a DFA without a prefilter
/// (about 190 ns for an 80-byte line against five secrets' forms, a
/// third of the default's time); larger sets the default automaton, whose
/// size stays linear in them.
const DFA_BYTES: usize = 16 * 1024;

/// Replaces a set of secret values, and their encodings, in text.
#[derive(Clone, Default)]
pub struct Masker {
    matcher: Option<Matcher>,
}

#[derive(Clone)]
enum Matcher {
    Automaton(AhoCorasick),
    /// Only if no automaton could be built: every pattern looked for in
    /// turn, slower but never unmasked.
    Patterns(Vec<String>),
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the patterns: they are the secrets.
        let patterns = match &self.matcher {
            None => 0,
            Some(Matcher::Automaton(automaton)) => automaton.patterns_len(),
            Some(Matcher::Patterns(patterns)) => patterns.len(),
        };
        f.debug_struct("Masker")
            .field("patterns", &patterns)
            .finish()
    }
}

impl Masker {
    /// A masker for these values; one that masks nothing when there are
    /// none.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Masker {
        let mut patterns = BTreeSet::new();
        for value in values {
            patterns.extend(forms(value));
        }
        if patterns.is_empty() {
            return Masker::default();
        }
        let bytes: usize = patterns.iter().map(String::len).sum();
        let mut builder = AhoCorasick::builder();
        builder.match_kind(MatchKind::LeftmostLongest);
        if bytes <= DFA_BYTES {
            builder.kind(Some(AhoCorasickKind::DFA)).prefilter(false);
        }
        let matcher = match builder.build(&patterns) {
            Ok(automaton) => Matcher::Automaton(automaton),
            Err(_) => {
                // Longest first, so a longer form is masked whole.
                let mut patterns: Vec<String> = patterns.into_iter().collect();
                patterns.sort_by_key(|pattern| std::cmp::Reverse(pattern.len()));
                Matcher::Patterns(patterns)
            }
        };
        Masker {
            matcher: Some(matcher),
        }
    }

    /// Whether it masks anything at all.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `text` with every value and form replaced by [`MASK`].
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match &self.matcher {
            None => Cow::Borrowed(text),
            Some(Matcher::Automaton(automaton)) => {
                if !automaton.is_match(text) {
                    return Cow::Borrowed(text);
                }
                let mut masked = String::with_capacity(text.len());
                automaton.replace_all_with(text, &mut masked, |_, _, out| {
                    out.push_str(MASK);
                    true
                });
                Cow::Owned(masked)
            }
            Some(Matcher::Patterns(patterns)) => {
                let mut masked = Cow::Borrowed(text);
                for pattern in patterns {
                    if masked.contains(pattern.as_str()) {
                        masked = Cow::Owned(masked.replace(pattern.as_str(), MASK));
                    }
                }
                masked
            }
        }
    }

    /// Masks `text` in place.
    pub fn mask_in_place(&self, text: &mut String) {
        if let Cow::Owned(masked) = self.mask(text) {
            *text = masked;
        }
    }
}

/// The value and the forms of it that are masked, each at least
/// [`MIN_MASKED`] bytes.
fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string(), value.replace('\n', "\\n")];
    forms.extend(value.lines().map(|line| line.trim().to_string()));
    for engine in [&STANDARD, &URL_SAFE] {
        for offset in 0..3 {
            let Some(stable) = base64_at(engine, value.as_bytes(), offset) else {
                continue;
            };
            if offset == 0 {
                for width in BASE64_WIDTHS {
                    forms.extend(chunks(&stable, width));
                }
            }
            forms.push(stable);
        }
    }
    let hex = hex::encode(value.as_bytes());
    forms.extend(chunks(&hex, HEX_WIDTH));
    forms.push(hex);
    forms.retain(|form| form.len() >= MIN_MASKED);
    forms
}

/// The part of the base64 of `value` that does not depend on what comes
/// before or after it, when it starts `offset` bytes into a 3-byte group
/// of a longer text: whole groups of the value's bytes only.
fn base64_at(
    engine: &base64::engine::GeneralPurpose,
    value: &[u8],
    offset: usize,
) -> Option<String> {
    let mut data = vec![0u8; offset];
    data.extend_from_slice(value);
    let encoded = engine.encode(&data);
    let start = if offset == 0 { 0 } else { 4 };
    let end = data.len() / 3 * 4;
    (end > start).then(|| encoded[start..end].to_string())
}

/// `text` cut into lines of `width` characters (ASCII only here).
fn chunks(text: &str, width: usize) -> Vec<String> {
    if text.len() <= width {
        return Vec::new();
    }
    text.as_bytes()
        .chunks(width)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-correct-horse-battery-staple";

    #[test]
    fn masks_the_value_anywhere_in_a_line() {
        let masker = Masker::new([SECRET]);
        assert_eq!(
            masker.mask(&format!("password={SECRET}; done")),
            "password=***; done"
        );
        assert_eq!(masker.mask("nothing here"), "nothing here");
        assert!(matches!(masker.mask("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn masks_base64_of_the_value_at_every_alignment_and_alphabet() {
        let masker = Masker::new([SECRET]);
        // `printf %s "$S" | base64`, `echo "$S" | base64` (a trailing
        // newline), and the value after 1 or 2 other bytes.
        for prefix in ["", "a", "ab", "abc"] {
            for suffix in ["", "\n"] {
                let data = format!("{prefix}{SECRET}{suffix}");
                for engine in [&STANDARD, &URL_SAFE] {
                    let encoded = engine.encode(data.as_bytes());
                    let masked = masker.mask(&encoded);
                    assert!(masked.contains(MASK), "{prefix:?} {suffix:?}: {masked}");
                    // What is left cannot give back more than 2 bytes at
                    // each end.
                    assert!(masked.len() < 4 + 3 + 4 + 4, "{masked}");
                }
            }
        }
    }

    #[test]
    fn masks_wrapped_encodings_line_by_line() {
        let long = "k".repeat(40) + &"q".repeat(80) + "-end";
        let masker = Masker::new([long.as_str()]);
        let encoded = STANDARD.encode(format!("{long}\n"));
        for line in encoded.as_bytes().chunks(76) {
            let line = std::str::from_utf8(line).expect("ascii");
            if line.len() >= 8 {
                assert!(masker.mask(line).contains(MASK), "{line}");
            }
        }
        let hex = hex::encode(long.as_bytes());
        for line in hex.as_bytes().chunks(60) {
            let line = std::str::from_utf8(line).expect("ascii");
            assert!(masker.mask(line).contains(MASK), "{line}");
        }
    }

    #[test]
    fn masks_each_line_of_a_multi_line_value() {
        let pem = "-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEFAASCAUEw\n-----END KEY-----";
        let masker = Masker::new([pem]);
        for line in pem.lines() {
            assert_eq!(masker.mask(line), MASK, "{line}");
        }
        assert_eq!(masker.mask(&pem.replace('\n', "\\n")), MASK);
    }

    #[test]
    fn a_large_value_is_masked_too() {
        // Past the DFA's budget: the default automaton.
        let big: String = (0..4000).map(|n| format!("{n:x}")).collect();
        let masker = Masker::new([big.as_str()]);
        assert_eq!(masker.mask(&format!("a {big} b")), "a *** b");
        let encoded = STANDARD.encode(big.as_bytes());
        assert!(masker.mask(&encoded[..200]).contains(MASK));
    }

    #[test]
    fn the_fallback_without_an_automaton_masks_the_same() {
        let masker = Masker {
            matcher: Some(Matcher::Patterns(vec![
                "hunter2-correct".into(),
                "hunter2".into(),
            ])),
        };
        assert_eq!(masker.mask("a hunter2-correct b hunter2"), "a *** b ***");
        assert!(matches!(masker.mask("clean"), Cow::Borrowed(_)));
    }

    #[test]
    fn masks_nothing_without_values_and_never_prints_them() {
        let none = Masker::new([]);
        assert!(none.is_empty());
        assert_eq!(none.mask(SECRET), SECRET);
        let masker = Masker::new([SECRET, "ab"]);
        assert!(!format!("{masker:?}").contains("hunter2"));
        // Too short to mask: "ab" stays.
        assert_eq!(masker.mask("ab"), "ab");
    }
}
