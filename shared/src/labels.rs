//! Labels (`role=web`) on agents and the selectors that match them.

use std::collections::BTreeMap;

/// Agent labels: sorted key/value pairs.
pub type Labels = BTreeMap<String, String>;

/// Longest label key or value accepted.
pub const MAX_LABEL_LEN: usize = 63;

/// Checks one label key or value: 1..=63 characters of `[A-Za-z0-9._-]`
/// (keys may also contain `/`).
pub fn check_label_part(text: &str, is_key: bool) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.len() > MAX_LABEL_LEN {
        return Err(format!(
            "`{text}` is longer than {MAX_LABEL_LEN} characters"
        ));
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') || (is_key && c == '/');
    if let Some(bad) = text.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "`{text}` contains `{bad}`; use letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

/// Parses `k=v,k2=v2` (as given to `--labels` or `--selector`).
pub fn parse_labels(text: &str) -> Result<Labels, String> {
    let mut labels = Labels::new();
    for pair in text
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("`{pair}` is not a label; write key=value"));
        };
        let (key, value) = (key.trim(), value.trim());
        check_label_part(key, true).map_err(|err| format!("label key {err}"))?;
        check_label_part(value, false).map_err(|err| format!("label value {err}"))?;
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(labels)
}

/// True when `labels` holds every pair of `selector`.
pub fn matches(selector: &Labels, labels: &Labels) -> bool {
    selector
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

/// `k=v,k2=v2` text for labels.
pub fn format_labels(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(text: &str) -> Labels {
        parse_labels(text).expect("valid labels")
    }

    #[test]
    fn parses_labels() {
        assert_eq!(
            format_labels(&labels(" role=web , zone=a ")),
            "role=web,zone=a"
        );
        assert!(labels("").is_empty());
        assert!(parse_labels("role").is_err());
        assert!(parse_labels("role=we b").is_err());
        assert!(parse_labels("=web").is_err());
    }

    #[test]
    fn selector_matches_all_pairs() {
        let host = labels("role=web,zone=a");
        assert!(matches(&labels("role=web"), &host));
        assert!(matches(&Labels::new(), &host));
        assert!(!matches(&labels("role=web,zone=b"), &host));
        assert!(!matches(&labels("tier=1"), &host));
    }
}
