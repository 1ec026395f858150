//! Labels (`role=web`) on agents and the selectors that match them.

use std::collections::BTreeMap;

use crate::record::Facts;
use crate::text::clip;

/// Agent labels: sorted key/value pairs.
pub type Labels = BTreeMap<String, String>;

/// How much of a refused value an error repeats.
const ECHO: usize = 80;

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
            "`{}` is longer than {MAX_LABEL_LEN} characters",
            clip(text, ECHO)
        ));
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') || (is_key && c == '/');
    if let Some(bad) = text.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "`{}` contains `{}`; use letters, digits, `.`, `_` and `-`",
            clip(text, ECHO),
            clip(&bad.to_string(), ECHO)
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
            return Err(format!(
                "`{}` is not a label; write key=value",
                clip(pair, ECHO)
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        check_label_part(key, true).map_err(|err| format!("label key {err}"))?;
        check_label_part(value, false).map_err(|err| format!("label value {err}"))?;
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(labels)
}

/// Most labels of its own an agent may carry (the automatic ones come on
/// top).
pub const MAX_LABELS: usize = 64;

/// The labels berth derives from every agent's host facts. Nobody sets or
/// removes them by hand; they follow what the agent reports.
pub const AUTOMATIC_LABELS: [&str; 3] = ["arch", "hostname", "os"];

/// True for a key berth sets from host facts (see [`AUTOMATIC_LABELS`]).
pub fn is_automatic(key: &str) -> bool {
    AUTOMATIC_LABELS.contains(&key)
}

/// Turns a host fact into a valid label value: lowercase, every character
/// outside `[a-z0-9._-]` becomes `-`, runs of `-` collapse to one, `-` and
/// `.` are trimmed from both ends, and the rest is cut to
/// [`MAX_LABEL_LEN`]. `None` when nothing is left.
pub fn sanitize_label_value(text: &str) -> Option<String> {
    let mut value = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            c
        } else {
            '-'
        };
        if !(c == '-' && value.ends_with('-')) {
            value.push(c);
        }
    }
    // Only ASCII is left, so any byte index is a character boundary.
    value.truncate(MAX_LABEL_LEN);
    let value = value.trim_matches(['-', '.']);
    (!value.is_empty()).then(|| value.to_string())
}

/// The automatic labels for an agent's host facts: `os` (the OS family the
/// agent was built for, such as `linux`), `arch` (such as `x86_64`) and
/// `hostname`, each sanitized by [`sanitize_label_value`] and left out when
/// the fact is empty.
pub fn automatic_labels(facts: &Facts) -> Labels {
    [
        ("os", &facts.os_family),
        ("arch", &facts.arch),
        ("hostname", &facts.hostname),
    ]
    .into_iter()
    .filter_map(|(key, fact)| sanitize_label_value(fact).map(|value| (key.to_string(), value)))
    .collect()
}

/// A checked `berth agents label` request: labels to set (or overwrite) and
/// keys to remove from an agent's own labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelChange {
    pub set: Labels,
    pub remove: Vec<String>,
}

impl LabelChange {
    /// Checks `key=value` entries to set and keys to remove. Each error names
    /// the label and the rule it breaks.
    pub fn parse(set: &[String], remove: &[String]) -> Result<LabelChange, String> {
        if set.is_empty() && remove.is_empty() {
            return Err("nothing to change; give key=value labels to set or --remove KEY".into());
        }
        if set.len() > MAX_LABELS || remove.len() > MAX_LABELS {
            return Err(format!(
                "at most {MAX_LABELS} labels to set and {MAX_LABELS} to remove in one change"
            ));
        }
        let mut change = LabelChange::default();
        for entry in set {
            let Some((key, value)) = entry.split_once('=') else {
                return Err(format!(
                    "`{}` is not a label; write key=value",
                    clip(entry, ECHO)
                ));
            };
            let entry = clip(entry, ECHO);
            check_label_part(key, true).map_err(|err| format!("label `{entry}`: key {err}"))?;
            check_label_part(value, false)
                .map_err(|err| format!("label `{entry}`: value {err}"))?;
            refuse_automatic(key)?;
            if change.set.insert(key.into(), value.into()).is_some() {
                return Err(format!("label `{key}` is given twice"));
            }
        }
        for key in remove {
            check_label_part(key, true).map_err(|err| format!("--remove `{key}`: key {err}"))?;
            refuse_automatic(key)?;
            if change.set.contains_key(key) {
                return Err(format!("label `{key}` is both set and removed"));
            }
            if !change.remove.contains(key) {
                change.remove.push(key.clone());
            }
        }
        Ok(change)
    }

    /// Applies the change to an agent's own labels. Removing a label the
    /// agent does not carry changes nothing; more than [`MAX_LABELS`] labels
    /// afterwards is refused and leaves `labels` as it was.
    pub fn apply(&self, labels: &mut Labels) -> Result<(), String> {
        let mut changed = labels.clone();
        for key in &self.remove {
            changed.remove(key);
        }
        changed.extend(self.set.clone());
        if changed.len() > MAX_LABELS {
            return Err(format!(
                "the agent would carry {} labels; at most {MAX_LABELS} are allowed",
                changed.len()
            ));
        }
        *labels = changed;
        Ok(())
    }
}

fn refuse_automatic(key: &str) -> Result<(), String> {
    if is_automatic(key) {
        return Err(format!(
            "label `{key}` is automatic (berth sets {} from the agent's host facts); it cannot be set or removed by hand",
            AUTOMATIC_LABELS.join(", ")
        ));
    }
    Ok(())
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

    fn check_sanitized(fact: &str, expected: Option<&str>) {
        assert_eq!(sanitize_label_value(fact).as_deref(), expected, "{fact:?}");
    }

    #[test]
    fn sanitizes_facts_into_label_values() {
        check_sanitized("linux", Some("linux"));
        check_sanitized("x86_64", Some("x86_64"));
        check_sanitized("Web-1.Example.COM", Some("web-1.example.com"));
        check_sanitized("Debian GNU/Linux", Some("debian-gnu-linux"));
        check_sanitized("  my  host ", Some("my-host"));
        check_sanitized("hôte", Some("h-te"));
        check_sanitized("-.host.-", Some("host"));
        check_sanitized("", None);
        check_sanitized("///", None);
        let long = "a".repeat(100);
        check_sanitized(&long, Some(&long[..MAX_LABEL_LEN]));
        // Cutting must not leave a trailing `-`.
        let cut = format!("{}-b", "a".repeat(MAX_LABEL_LEN - 1));
        check_sanitized(&cut, Some(&cut[..MAX_LABEL_LEN - 1]));
        for fact in ["Web 1/2", "ÄÖÜ-x", "a__b", "..x.."] {
            if let Some(value) = sanitize_label_value(fact) {
                assert_eq!(
                    check_label_part(&value, false),
                    Ok(()),
                    "{fact:?} -> {value:?}"
                );
            }
        }
    }

    #[test]
    fn automatic_labels_come_from_facts() {
        let facts = Facts {
            hostname: "Build_Box.local".into(),
            os: "Debian GNU/Linux".into(),
            os_family: "linux".into(),
            arch: "aarch64".into(),
            ..Facts::default()
        };
        assert_eq!(
            format_labels(&automatic_labels(&facts)),
            "arch=aarch64,hostname=build_box.local,os=linux"
        );
        let unknown = Facts {
            arch: "x86_64".into(),
            ..Facts::default()
        };
        assert_eq!(format_labels(&automatic_labels(&unknown)), "arch=x86_64");
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn check_change(set: &[&str], remove: &[&str], expected: Result<&str, &str>) {
        let parsed = LabelChange::parse(&strings(set), &strings(remove));
        match (parsed, expected) {
            (Ok(change), Ok(text)) => {
                let mut described = format_labels(&change.set);
                for key in &change.remove {
                    described.push_str(&format!(" -{key}"));
                }
                assert_eq!(described.trim(), text);
            }
            (Err(err), Err(needle)) => assert!(err.contains(needle), "{err}"),
            (got, want) => panic!("{set:?} {remove:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn checks_label_changes() {
        check_change(&["role=web", "zone=a"], &[], Ok("role=web,zone=a"));
        check_change(&[], &["role", "role"], Ok("-role"));
        check_change(&["role=db"], &["zone"], Ok("role=db -zone"));
        check_change(&[], &[], Err("nothing to change"));
        check_change(&["role"], &[], Err("`role` is not a label"));
        check_change(&["role=we b"], &[], Err("label `role=we b`: value"));
        check_change(&["=web"], &[], Err("label `=web`: key must not be empty"));
        check_change(&["os=linux"], &[], Err("label `os` is automatic"));
        check_change(&[], &["hostname"], Err("label `hostname` is automatic"));
        check_change(&["arch=arm"], &[], Err("cannot be set or removed by hand"));
        check_change(&["role=a", "role=b"], &[], Err("`role` is given twice"));
        check_change(&["role=a"], &["role"], Err("both set and removed"));
        check_change(&[], &["bad key"], Err("--remove `bad key`"));
        let long = format!("k={}", "v".repeat(MAX_LABEL_LEN + 1));
        check_change(&[&long], &[], Err("longer than 63"));
        let many: Vec<String> = (0..=MAX_LABELS).map(|n| format!("k{n}=v")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        check_change(&many, &[], Err("at most 64 labels"));
    }

    #[test]
    fn applies_label_changes_within_the_bound() {
        let mut own = labels("role=web,zone=a");
        let change = LabelChange::parse(&strings(&["role=db", "tier=1"]), &strings(&["zone"]))
            .expect("valid change");
        change.apply(&mut own).expect("within the bound");
        assert_eq!(format_labels(&own), "role=db,tier=1");

        let mut full: Labels = (0..MAX_LABELS)
            .map(|n| (format!("k{n}"), "v".to_string()))
            .collect();
        let before = full.clone();
        let one_more = LabelChange::parse(&strings(&["extra=1"]), &[]).expect("valid change");
        let err = one_more.apply(&mut full).expect_err("over the bound");
        assert!(err.contains("65 labels"), "{err}");
        assert_eq!(full, before, "a refused change changes nothing");
        let overwrite = LabelChange::parse(&strings(&["k1=w"]), &[]).expect("valid change");
        overwrite
            .apply(&mut full)
            .expect("overwriting keeps the count");
    }
}
