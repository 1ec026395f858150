//! Cutting what came from outside before it is stored, logged or echoed
//! in an error: a hostile peer must not make berth repeat 100 KB back, or
//! print control characters into an operator's terminal.

/// `text` cut to at most `max` bytes (on a character boundary), with
/// control characters replaced by `?`, and `… (N bytes)` appended when it
/// was cut.
pub fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut clipped: String = text[..end]
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if end < text.len() {
        clipped.push_str(&format!("… ({} bytes)", text.len()));
    }
    clipped
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn long_hostile_text_is_cut_and_made_printable() {
        assert_eq!(clip("0.4.2", 64), "0.4.2");
        assert_eq!(clip(&"x".repeat(100_000), 8), "xxxxxxxx… (100000 bytes)");
        assert_eq!(clip("ab\u{1b}[2Jc", 64), "ab?[2Jc");
        // Never splits a character.
        assert_eq!(clip("éé", 3), "é… (4 bytes)");
    }
}
