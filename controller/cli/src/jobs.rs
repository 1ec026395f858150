//! `berth jobs`: the fleet jobs `berth exec` stored, listed newest first
//! (`ls`, without their output) or one in full (`show`, each host's result
//! and output).

use berth_proto::v1::{GetJobRequest, ListJobsRequest};
use berth_shared::exit;
use berth_shared::record::FleetJob;
use clap::Subcommand;

use super::output::{Column, ago, emit, grid};
use super::wire;
use super::{Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// List fleet jobs (`berth exec` runs), newest first.
    Ls {
        /// At most this many jobs (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Show one fleet job: each host's result and output.
    Show {
        /// Job id (as `berth exec` and `berth jobs ls -o wide` print it).
        id: String,
    },
}

pub async fn run(session: &mut Session, command: JobsCommand) -> Outcome {
    match command {
        JobsCommand::Ls { limit } => {
            let reply = session
                .client
                .list_jobs(ListJobsRequest { limit })
                .await?
                .into_inner();
            let jobs: Vec<FleetJob> = wire::jobs(reply);
            emit(session.format, &jobs, || {
                if jobs.is_empty() {
                    return "no jobs; `berth exec` runs one".to_string();
                }
                let mut rows = grid(
                    session.format,
                    &[
                        Column::Id("ID"),
                        Column::Text("COMMAND"),
                        Column::Text("RESULT"),
                        Column::Wide("SELECTOR"),
                        Column::Text("STARTED"),
                        Column::Wide("BY"),
                    ],
                );
                for job in &jobs {
                    rows.row(vec![
                        job.id.clone(),
                        job.argv.join(" "),
                        result(job),
                        job.selector.clone(),
                        ago(job.started_at),
                        job.triggered_by.clone(),
                    ]);
                }
                rows.to_string()
            });
            Ok(exit::OK)
        }
        JobsCommand::Show { id } => {
            let reply = session
                .client
                .get_job(GetJobRequest { id })
                .await?
                .into_inner();
            let job: FleetJob = wire::job(reply)?;
            emit(session.format, &job, || describe(&job));
            Ok(exit::OK)
        }
    }
}

/// `ok 3/3`, or how many hosts did not succeed.
fn result(job: &FleetJob) -> String {
    let ok = job.hosts.iter().filter(|host| host.status == "ok").count();
    let total = job.hosts.len();
    if ok == total {
        format!("ok {ok}/{total}")
    } else {
        format!("failed {}/{total}", total - ok)
    }
}

/// A job in full: what ran where, then each host's result and output.
fn describe(job: &FleetJob) -> String {
    let selector = if job.selector.is_empty() {
        "every host"
    } else {
        job.selector.as_str()
    };
    let mut text = format!(
        "job {}\n  command:   {}\n  selector:  {selector}\n  by:        {}\n  started:   {}\n  finished:  {}\n  result:    {}\n",
        job.id,
        job.argv.join(" "),
        job.triggered_by,
        job.started_at,
        job.finished_at,
        result(job)
    );
    for host in &job.hosts {
        let code = host
            .exit_code
            .map(|code| format!(" (exit {code})"))
            .unwrap_or_default();
        let error = host
            .error
            .as_deref()
            .filter(|_| host.status != "ok")
            .map(|error| format!(": {error}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "\n{}: {}{code}{error} in {:.1}s\n",
            host.host,
            host.status,
            host.duration_ms as f64 / 1000.0
        ));
        for line in &host.output {
            match line.strip_prefix("stderr: ") {
                Some(line) => text.push_str(&format!("{} ! {line}\n", host.host)),
                None => text.push_str(&format!("{} | {line}\n", host.host)),
            }
        }
    }
    text.trim_end().to_string()
}
