//! `berth metrics dora`: an app's DORA figures in one environment over a
//! window ending now (deployment frequency, lead time for changes, change
//! failure rate, time to restore, each with its level), as a small table
//! or, with `-o json`, the `DoraReport` record.

use std::time::Duration;

use berth_proto::v1::GetDoraRequest;
use berth_shared::exit;
use berth_shared::record::{DoraLevel, DoraReport};
use berth_shared::time::format_duration;
use clap::{Args, Subcommand};

use super::output::{Column, emit, grid};
use super::wire;
use super::{Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum MetricsCommand {
    /// DORA figures of an app in one environment (docs/dora.md).
    Dora(DoraArgs),
}

#[derive(Args, Debug)]
pub struct DoraArgs {
    #[arg(long)]
    pub app: String,
    /// Default: the app's only environment, else its default one.
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// How far back from now (e.g. 7d, 30d; at most a year).
    #[arg(long, default_value = "30d")]
    pub since: String,
    /// How soon after a change a deployment whose message or ref says
    /// fix, hotfix or revert counts the change as failed (at most a week).
    #[arg(long, default_value = "1h")]
    pub fix_window: String,
}

pub async fn run(session: &mut Session, command: MetricsCommand) -> Outcome {
    let MetricsCommand::Dora(args) = command;
    let request = GetDoraRequest {
        app: args.app,
        environment: args.environment.unwrap_or_default(),
        since: args.since,
        fix_window: args.fix_window,
    };
    let reply = session.client.get_dora(request).await?;
    let report = wire::dora(reply.into_inner())?;
    emit(session.format, &report, || dora_text(session, &report));
    Ok(exit::OK)
}

/// A duration for people: whole seconds, or milliseconds under one.
fn ms(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    format_duration(Duration::from_millis(ms))
}

fn level(level: Option<DoraLevel>) -> String {
    level.map_or("-", DoraLevel::as_str).to_string()
}

fn dora_text(session: &Session, report: &DoraReport) -> String {
    let mut text = format!(
        "{} in {}, {} to {} (fix window {})\n",
        report.app,
        report.environment,
        report.from,
        report.to,
        ms(report.fix_window_ms)
    );
    let mut rows = grid(
        session.format,
        &[
            Column::Text("FIGURE"),
            Column::Full("VALUE"),
            Column::Text("LEVEL"),
        ],
    );
    let frequency = &report.deployment_frequency;
    rows.row(vec![
        "deployment frequency".into(),
        format!(
            "{} deployed ({:.2} a day, {:.2} a week)",
            frequency.count, frequency.per_day, frequency.per_week
        ),
        level(frequency.level),
    ]);
    let lead = &report.lead_time;
    let lead_value = match (lead.median_ms, lead.p90_ms) {
        (Some(median), Some(p90)) => format!("median {}, p90 {}", ms(median), ms(p90)),
        _ => "no commit times".into(),
    };
    rows.row(vec![
        "lead time for changes".into(),
        format!(
            "{lead_value} ({} of {} changes with a commit time)",
            lead.with_commit_time, lead.deployed
        ),
        level(lead.level),
    ]);
    let rate = &report.change_failure_rate;
    rows.row(vec![
        "change failure rate".into(),
        match rate.rate {
            Some(share) => format!(
                "{:.1}% ({} of {} changes)",
                share * 100.0,
                rate.failed,
                rate.changes
            ),
            None => "no changes".into(),
        },
        level(rate.level),
    ]);
    let restore = &report.time_to_restore;
    let restore_value = match (restore.median_ms, restore.p90_ms) {
        (Some(median), Some(p90)) => format!("median {}, p90 {}", ms(median), ms(p90)),
        _ => "nothing restored".into(),
    };
    rows.row(vec![
        "time to restore".into(),
        format!(
            "{restore_value} ({} restored, {} open)",
            restore.restored,
            restore.open.len()
        ),
        level(restore.level),
    ]);
    text.push_str(&rows.to_string());
    for open in &restore.open {
        text.push_str(&format!(
            "\nopen failure: {} since {}",
            open.deployment_id, open.since
        ));
    }
    text
}
