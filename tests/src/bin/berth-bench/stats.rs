//! Result rows and their statistics: every scenario turns its samples into
//! [`Row`]s (median, p95, p99, min, max), printed as a Markdown table so a
//! run can be pasted into `docs/BENCHMARKS.md` as it is.

use std::fmt::Write as _;

use berth_tests::stats::percentile;

/// One line of the results table.
#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: String,
    /// What N means for this row (hosts, deploys, agents, lines).
    pub n: String,
    pub samples: usize,
    pub median: f64,
    pub p95: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
    pub unit: &'static str,
    /// The goal and whether this run met it, or empty.
    pub goal: String,
}

/// Whether a row is compared against a goal, and how.
pub enum Goal {
    None,
    /// The named statistic must stay below the limit.
    Below(Stat, f64, &'static str),
    /// The named statistic must reach at least the limit.
    AtLeast(Stat, f64, &'static str),
}

#[derive(Clone, Copy)]
pub enum Stat {
    Median,
    P95,
    P99,
}

impl Row {
    /// A row from samples (any order); an empty set gives `-` everywhere.
    pub fn new(scenario: &str, n: &str, unit: &'static str, samples: &[f64], goal: Goal) -> Row {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let pick = |q: f64| percentile(&sorted, q);
        let mut row = Row {
            scenario: scenario.to_string(),
            n: n.to_string(),
            samples: sorted.len(),
            median: pick(0.5),
            p95: pick(0.95),
            p99: pick(0.99),
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            unit,
            goal: String::new(),
        };
        row.goal = match goal {
            Goal::None => String::new(),
            Goal::Below(stat, limit, text) => verdict(row.stat(stat) < limit, text),
            Goal::AtLeast(stat, limit, text) => verdict(row.stat(stat) >= limit, text),
        };
        row
    }

    /// A row for one measured value.
    pub fn single(scenario: &str, n: &str, unit: &'static str, value: f64, goal: Goal) -> Row {
        Row::new(scenario, n, unit, &[value], goal)
    }

    /// This row under another scenario's name.
    pub fn renamed(mut self, scenario: &str) -> Row {
        self.scenario = scenario.to_string();
        self
    }

    /// A row saying why a scenario produced no numbers.
    pub fn note(scenario: &str, text: &str) -> Row {
        let mut row = Row::new(scenario, "-", "", &[], Goal::None);
        row.goal = text.to_string();
        row
    }

    fn stat(&self, stat: Stat) -> f64 {
        match stat {
            Stat::Median => self.median,
            Stat::P95 => self.p95,
            Stat::P99 => self.p99,
        }
    }

    /// Whether the row states a goal it missed.
    pub fn missed(&self) -> bool {
        self.goal.starts_with("MISSED") || self.goal.starts_with("FAILED")
    }
}

fn verdict(met: bool, text: &str) -> String {
    if met {
        format!("met ({text})")
    } else {
        format!("MISSED ({text})")
    }
}

/// A number with a precision that suits its size.
fn number(value: f64) -> String {
    if value.is_nan() {
        return "-".into();
    }
    let magnitude = value.abs();
    if magnitude >= 10_000.0 {
        let whole = value.round() as i64;
        // Thousands separators keep large counts readable.
        let digits = whole.abs().to_string();
        let mut grouped = String::new();
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if whole < 0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// The table header.
pub fn header() -> String {
    "| scenario | N | samples | median | p95 | p99 | min | max | unit | goal |\n|---|---|---|---|---|---|---|---|---|---|".to_string()
}

/// One row of the table; percentiles of a single sample are left out.
pub fn line(row: &Row) -> String {
    let tail = |value: f64| {
        if row.samples > 1 {
            number(value)
        } else {
            "-".to_string()
        }
    };
    let mut text = String::new();
    let _ = write!(
        text,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        row.scenario,
        row.n,
        row.samples,
        number(row.median),
        tail(row.p95),
        tail(row.p99),
        number(row.min),
        number(row.max),
        row.unit,
        row.goal
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_a_precision_that_suits_their_size() {
        assert_eq!(number(1_234_567.0), "1,234,567");
        assert_eq!(number(0.1234), "0.123");
    }
}
