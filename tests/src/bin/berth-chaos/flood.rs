//! The log producer the chaos deployments run: a shell script that prints
//! numbered lines (`line 1`, `line 2`, ...) and closes with `end N`, so the
//! lines read back with `berth logs` prove on their own that none was
//! lost, doubled or reordered, without the program knowing beforehand how
//! many were printed.

use std::path::{Path, PathBuf};

use berth_tests::{Controller, write_bundle};

/// `flood.sh BURST EXIT_CODE LIMIT`: BURST lines every 100 ms until a
/// `release` file appears in the work directory (LIMIT 0), or LIMIT lines
/// at full speed; then `end N` and EXIT_CODE. An unreleased flood stops
/// by itself after an hour, so a script orphaned by a killed agent ends.
const SCRIPT: &str = r#"#!/bin/sh
burst=$1; code=$2; limit=$3; i=0; rounds=0
while [ $rounds -lt 36000 ]; do
  rounds=$((rounds+1)); j=0
  while [ $j -lt "$burst" ]; do
    i=$((i+1)); j=$((j+1)); echo "line $i"
    if [ "$limit" -gt 0 ] && [ $i -ge "$limit" ]; then break 2; fi
  done
  if [ "$limit" -gt 0 ]; then continue; fi
  if [ -e "$BERTH_WORK_DIR/release" ]; then break; fi
  sleep 0.1
done
echo "end $i"
exit "$code"
"#;

/// What a flood deployment runs and how it must end.
pub struct Flood<'a> {
    pub app: &'a str,
    /// A `[target]` line, e.g. `hosts = ["a"]`.
    pub target: &'a str,
    pub burst: u32,
    /// 0: print until released.
    pub limit: u64,
    pub exit_code: i32,
}

impl Flood<'_> {
    /// Writes the bundle (the version makes every bundle new).
    pub fn bundle(&self, controller: &Controller, version: u64) -> PathBuf {
        let manifest = format!(
            "app = \"{}\"\nversion = \"{version}\"\n[target]\n{}\n[setup]\nrun = [\"./flood.sh {} {} {}\"]\ntimeout = \"2h\"\n",
            self.app, self.target, self.burst, self.exit_code, self.limit
        );
        let name = format!("bundle-{}-{version}", self.app);
        write_bundle(
            controller.dir.path(),
            &name,
            &manifest,
            &[("flood.sh", SCRIPT)],
        )
    }

    /// The status a deployment of it must end in.
    pub fn expected_status(&self) -> &'static str {
        if self.exit_code == 0 {
            "deployed"
        } else {
            "failed"
        }
    }
}

/// Lets an unlimited flood on an agent (data directory `agent_dir`) end.
pub fn release(agent_dir: &Path, deployment: &str) -> std::io::Result<()> {
    std::fs::write(agent_dir.join("work").join(deployment).join("release"), b"")
}

/// Checks `line 1` .. `line N` then `end N`, each exactly once and in
/// order; returns N, or says what is wrong.
pub fn check(lines: &[String]) -> Result<u64, String> {
    let Some((last, numbered)) = lines.split_last() else {
        return Err("no line at all".to_string());
    };
    let total: u64 = last
        .strip_prefix("end ")
        .and_then(|count| count.parse().ok())
        .ok_or_else(|| format!("the last line is `{last}`, not `end N`"))?;
    for (index, line) in numbered.iter().enumerate() {
        let expected = format!("line {}", index + 1);
        if *line != expected {
            let around = &numbered[index.saturating_sub(2)..(index + 3).min(numbered.len())];
            return Err(format!(
                "line {} is `{line}`, not `{expected}` (around it: {around:?}; {} lines before `end {total}`)",
                index + 1,
                numbered.len()
            ));
        }
    }
    if numbered.len() as u64 != total {
        return Err(format!(
            "{} numbered lines but the script printed {total}",
            numbered.len()
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|line| line.to_string()).collect()
    }

    #[test]
    fn complete_ordered_lines_pass_and_gaps_doubles_and_truncation_do_not() {
        assert_eq!(check(&lines(&["line 1", "line 2", "end 2"])), Ok(2));
        assert_eq!(check(&lines(&["end 0"])), Ok(0));
        assert!(check(&lines(&["line 1", "line 3", "end 3"])).is_err());
        assert!(check(&lines(&["line 1", "line 1", "line 2", "end 2"])).is_err());
        assert!(check(&lines(&["line 1", "line 2"])).is_err());
        assert!(check(&lines(&["line 1", "end 2"])).is_err());
        assert!(check(&[]).is_err());
    }
}
