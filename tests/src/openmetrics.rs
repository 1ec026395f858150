//! A strict reader of the OpenMetrics text format (what `GET /metrics` of
//! the controller and the agent answers), for the metrics tests: metric
//! families with `# HELP`, `# TYPE` and `# UNIT`, samples with labels
//! (escapes `\\`, `\"`, `\n`) and values, ending in `# EOF`. Anything else
//! (a sample of no declared family, a family named twice, a bad escape, a
//! line after `# EOF`) is an error, so a malformed exposition fails the
//! test that reads it. Also [`scrape`]: `GET` with curl, as Prometheus
//! would, returning the content type with the parsed text.

use std::collections::BTreeMap;
use std::process::Command;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One metric family.
#[derive(Clone, Debug, Default)]
pub struct Family {
    /// `counter`, `gauge`, `histogram`, ...
    pub kind: String,
    pub help: Option<String>,
    pub unit: Option<String>,
    pub samples: Vec<Sample>,
}

/// Every family of one exposition, by name.
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    pub families: BTreeMap<String, Family>,
}

impl Exposition {
    /// The samples named `name` whose labels include all of `labels`.
    pub fn samples<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.families
            .values()
            .flat_map(|family| family.samples.iter())
            .filter(move |sample| {
                sample.name == name
                    && labels.iter().all(|(key, value)| {
                        sample.labels.get(*key).map(String::as_str) == Some(*value)
                    })
            })
    }

    /// The sum of the samples [`Exposition::samples`] finds; `None` when
    /// there is none.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.samples(name, labels).peekable();
        found.peek()?;
        Some(found.map(|sample| sample.value).sum())
    }
}

/// Suffixes a sample of a family of `kind` may add to its name.
fn suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "histogram" | "gaugehistogram" => {
            &["_bucket", "_count", "_sum", "_created", "_gcount", "_gsum"]
        }
        "summary" => &["", "_count", "_sum", "_created"],
        "info" => &["_info"],
        _ => &[""],
    }
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|rest| rest.is_ascii_alphanumeric() || rest == '_' || rest == ':')
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text
            .parse()
            .map_err(|_| format!("`{text}` is not a number")),
    }
}

/// Reads `{name="value",...}` from the start of `text`; returns the labels
/// and the rest.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.strip_prefix('{').ok_or("labels must start with {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest.split_once("=\"").ok_or("a label needs =\"")?;
        if !is_name(name) {
            return Err(format!("`{name}` is not a label name"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in a label value")),
                },
                Some((index, '"')) => break index,
                Some((_, other)) => value.push(other),
                None => return Err("a label value does not end".into()),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label `{name}` given twice"));
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample needs a value")?;
    let name = &line[..name_end];
    if !is_name(name) {
        return Err(format!("`{name}` is not a metric name"));
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let rest = rest
        .strip_prefix(' ')
        .ok_or("a value follows after one space")?;
    // A value, maybe a timestamp; exemplars (` # {...}`) are not used.
    let mut parts = rest.split(' ');
    let value = parse_value(parts.next().unwrap_or_default())?;
    if let Some(timestamp) = parts.next() {
        parse_value(timestamp)?;
    }
    if parts.next().is_some() {
        return Err("more after the value and timestamp".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses an exposition.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut exposition = Exposition::default();
    let body = text
        .strip_suffix("# EOF\n")
        .ok_or("the text does not end with `# EOF`")?;
    let mut current: Option<String> = None;
    for (number, line) in body.lines().enumerate() {
        let fail = |reason: String| format!("line {}: {reason}: {line}", number + 1);
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (keyword, name, rest) = (parts.next(), parts.next(), parts.next());
            let (Some(keyword), Some(name)) = (keyword, name) else {
                return Err(fail("a comment names a keyword and a metric".into()));
            };
            if !is_name(name) {
                return Err(fail(format!("`{name}` is not a metric name")));
            }
            if current.as_deref() != Some(name) {
                if exposition.families.contains_key(name) {
                    return Err(fail(format!("family `{name}` appears twice")));
                }
                exposition
                    .families
                    .insert(name.to_string(), Family::default());
                current = Some(name.to_string());
            }
            let family = exposition.families.get_mut(name).expect("inserted above");
            let rest = rest.unwrap_or_default().to_string();
            match keyword {
                "TYPE" => family.kind = rest,
                "HELP" => family.help = Some(rest),
                "UNIT" => family.unit = Some(rest),
                other => return Err(fail(format!("unknown keyword `{other}`"))),
            }
            continue;
        }
        let sample = parse_sample(line).map_err(fail)?;
        let Some(name) = current.as_deref() else {
            return Err(fail("a sample before any family".into()));
        };
        let family = exposition.families.get_mut(name).expect("current family");
        let belongs = suffixes(&family.kind)
            .iter()
            .any(|suffix| sample.name == format!("{name}{suffix}"));
        if !belongs {
            return Err(fail(format!(
                "not a sample of the {} `{name}`",
                family.kind
            )));
        }
        family.samples.push(sample);
    }
    Ok(exposition)
}

/// `GET url` with curl: the content type and the parsed exposition.
pub fn scrape(url: &str) -> (String, Exposition) {
    let output = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--max-time",
            "20",
            "-w",
            "%{content_type}",
            url,
        ])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "GET {url} failed: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    // `-w` wrote the content type right after the body's last line break.
    let (body, content_type) = text.rsplit_once('\n').expect("curl's trailer");
    let body = format!("{body}\n");
    let exposition = parse(&body)
        .unwrap_or_else(|err| panic!("{url}: {err}\n{body}\n(content type `{content_type}`)"));
    (content_type.to_string(), exposition)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_families_labels_and_escapes() {
        let text = "# HELP a_seconds Time.\n# TYPE a_seconds histogram\n# UNIT a_seconds seconds\na_seconds_sum 1.5\na_seconds_count 2\na_seconds_bucket{le=\"+Inf\"} 2\n# TYPE b counter\nb_total{x=\"q\\\"\\\\\\n\",y=\"\"} 3\n# EOF\n";
        let exposition = parse(text).expect("parses");
        assert_eq!(exposition.sum("a_seconds_count", &[]), Some(2.0));
        assert_eq!(
            exposition.families["a_seconds"].unit.as_deref(),
            Some("seconds")
        );
        let sample = exposition.samples("b_total", &[]).next().expect("b");
        assert_eq!(sample.labels["x"], "q\"\\\n");
        assert_eq!(exposition.sum("b_total", &[("y", "")]), Some(3.0));
    }

    #[test]
    fn refuses_what_the_format_does_not_allow() {
        for bad in [
            "# TYPE a counter\na_total 1\n",
            "# TYPE a counter\na 1\n# EOF\n",
            "a 1\n# EOF\n",
            "# TYPE a gauge\na{x=\"\\q\"} 1\n# EOF\n",
            "# TYPE a gauge\na 1\n# TYPE b gauge\n# TYPE a gauge\n# EOF\n",
            "# TYPE a gauge\na one\n# EOF\n",
            "# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n# EOF\n",
        ] {
            assert!(parse(bad).is_err(), "accepted: {bad:?}");
        }
    }
}
