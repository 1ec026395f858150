//! The DORA panel of an app's page: in each environment, the four figures
//! of `ops::dora::report` (as `GET /api/v1/apps/{app}/dora` gives them)
//! over the window the page's `since` parameter names (7, 30 or 90 days
//! by its links, 30 by default), each with its level, and the open
//! failures. Plain HTML: the window is a link, no script.

use std::time::Duration;

use berth_shared::record::{DoraLevel, DoraReport};
use berth_shared::time::format_duration;
use maud::{Markup, html};

use crate::ops::Error;

/// The windows the panel offers.
const WINDOWS: [(&str, &str); 3] = [("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days")];

/// The page's `since` parameter, or the default window.
pub fn since(query: Option<&str>) -> String {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "since")
        .map(|(_, value)| berth_shared::text::clip(&value, 40).to_string())
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| crate::ops::dora::DEFAULT_SINCE.to_string())
}

/// A duration for people: whole seconds, or milliseconds under one.
fn ms(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    format_duration(Duration::from_millis(ms))
}

fn level(level: Option<DoraLevel>) -> Markup {
    match level {
        Some(level) => {
            html! { span class=(format!("level level-{}", level.as_str())) { (level.as_str()) } }
        }
        None => html! { span class="level" { "no data" } },
    }
}

/// The panel of one environment.
pub fn panel(environment: &str, since: &str, report: &Result<DoraReport, Error>) -> Markup {
    let id = format!("dora-{environment}");
    html! {
        section class="dora" aria-labelledby=(id) {
            h3 id=(id) { "DORA figures, last " (since) }
            nav class="dora-windows" aria-label=(format!("DORA window in {environment}")) {
                @for (value, label) in WINDOWS {
                    a href=(format!("?since={value}")) aria-current=[(value == since).then_some("true")] { (label) }
                }
            }
            @match report {
                Err(err) => (super::layout::refusal(err)),
                Ok(report) => (figures(report)),
            }
        }
    }
}

fn figures(report: &DoraReport) -> Markup {
    let frequency = &report.deployment_frequency;
    let lead = &report.lead_time;
    let rate = &report.change_failure_rate;
    let restore = &report.time_to_restore;
    html! {
        dl class="dora-figures" {
            div {
                dt { "Deployment frequency" }
                dd data-figure="deployment-frequency" { (frequency.count) " deployed (" (format!("{:.2}", frequency.per_day)) " a day)" }
                dd { (level(frequency.level)) }
            }
            div {
                dt { "Lead time for changes" }
                dd data-figure="lead-time" {
                    @match lead.median_ms { Some(median) => { "median " (ms(median)) }, None => "no commit times" }
                    " (" (lead.with_commit_time) " of " (lead.deployed) " with a commit time)"
                }
                dd { (level(lead.level)) }
            }
            div {
                dt { "Change failure rate" }
                dd data-figure="change-failure-rate" {
                    @match rate.rate { Some(share) => (format!("{:.1}%", share * 100.0)), None => "no changes" }
                    " (" (rate.failed) " of " (rate.changes) " changes)"
                }
                dd { (level(rate.level)) }
            }
            div {
                dt { "Time to restore" }
                dd data-figure="time-to-restore" {
                    @match restore.median_ms { Some(median) => { "median " (ms(median)) }, None => "nothing restored" }
                    " (" (restore.restored) " restored, " (restore.open.len()) " open)"
                }
                dd { (level(restore.level)) }
            }
        }
        @for open in &restore.open {
            p class="warn" { "Open failure: " a href=(format!("/deployments/{}", open.deployment_id)) { code { (open.deployment_id) } } " since " (super::layout::time(open.since)) }
        }
    }
}
