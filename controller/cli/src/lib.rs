//! The `berth` command line: argument parsing, the connection to the
//! controller, output formats, and the mapping from failures to exit codes
//! (SPEC §6). One module per group of subcommands.

mod agents;
mod approvals;
mod apps;
mod bundle;
mod connection;
mod controllers;
mod deploy;
mod environments;
mod exec;
mod failure;
mod grid;
mod health;
mod hooks;
mod jobs;
mod lifecycle;
mod live;
mod logs;
mod metrics;
mod output;
mod people;
mod provenance;
mod replaced;
mod resolve;
mod resources;
mod secrets;
mod show;
mod status;
mod stop;
mod tokens;
mod watch;
mod webhooks;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use berth_proto::v1::cli_client::CliClient;
use berth_shared::exit;
use clap::{Parser, Subcommand};
use connection::connect;
use tonic::Code;
use tonic::transport::Channel;

pub use failure::Failure;
pub use output::Format;

/// berth: deploy software to a fleet of servers.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "berth: deploy software to a fleet of servers",
    max_term_width = 100
)]
pub struct Args {
    /// Controller address (https://HOST:PORT), or several controllers of
    /// one store as a list (https://A:7443,https://B:7443: the first that
    /// answers serves); default: from the credential bundle.
    #[arg(long, global = true, env = "BERTH_CONTROLLER")]
    pub controller: Option<String>,
    /// Credential bundle; default: ~/.config/berth/config.
    #[arg(long, global = true, env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output format: tables fitted to the terminal, `wide` tables with
    /// every column, or JSON.
    #[arg(short, long, global = true, value_enum, default_value = "table")]
    pub output: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a deployment and follow it until it ends.
    Deploy(deploy::DeployArgs),
    /// Follow a deployment live (again), as deploy does, until it ends.
    Watch(watch::WatchArgs),
    /// List deployments, newest first.
    Ls(show::LsArgs),
    /// Show everything about one deployment.
    Show {
        /// Deployment id.
        id: String,
    },
    /// Print a deployment's logs.
    Logs(logs::LogsArgs),
    /// The app catalogue: each app's environments and ratings; rate an
    /// app 1 to 5 stars.
    #[command(subcommand)]
    Apps(apps::AppsCommand),
    /// Delivery figures: `berth metrics dora --app APP` (deployment
    /// frequency, lead time, change failure rate, time to restore).
    #[command(subcommand)]
    Metrics(metrics::MetricsCommand),
    /// An app's environments as records: type, default, protection and
    /// variables (`berth env create APP/ENV --type production`).
    #[command(subcommand)]
    Env(environments::EnvCommand),
    /// What version of each app runs where, since when; with
    /// --controllers, the controllers of the store instead.
    Status {
        #[arg(long = "env", conflicts_with = "controllers")]
        environment: Option<String>,
        /// The controllers serving from the store, each with its agents,
        /// and the one holding the once-per-store work.
        #[arg(long)]
        controllers: bool,
    },
    /// Stop an app: run its [stop] commands and stop its containers on its hosts.
    Stop(stop::StopArgs),
    /// Tear a deployment down on every host: its containers and work
    /// directory (its app's resources and their data stay unless asked).
    Delete(stop::DeleteArgs),
    /// Cancel a running (or queued) deployment: its stages stop on every host.
    Cancel {
        /// Deployment id.
        id: String,
        /// Return without waiting for the hosts to stop.
        #[arg(long)]
        detach: bool,
    },
    /// Approve what a deployment waits for in a protected environment (a
    /// deploy, retry or rollback, or a stop, redeploy or start of it), then
    /// follow it; never your own request.
    Approve(approvals::ApproveArgs),
    /// Run a failed, canceled or timed-out deployment again, as a new deployment.
    Retry(lifecycle::RetryArgs),
    /// Run a deployed or stopped deployment again on its hosts.
    Redeploy(lifecycle::RerunArgs),
    /// Start a stopped app again: its latest stopped deployment, on its hosts.
    Start(lifecycle::StartArgs),
    /// Deploy an app's previous successful version again (or the one named with --to).
    Rollback(lifecycle::RollbackArgs),
    /// Forget a deployment's record and logs; what it made on the hosts stays.
    Purge {
        /// Deployment id.
        id: String,
    },
    /// Who did what, when: deploys, cancels, stops, tokens, revocations.
    Audit(lifecycle::AuditArgs),
    /// Fleet-wide: run a command on every matching host, output prefixed by host.
    Exec(exec::ExecArgs),
    /// The fleet jobs `berth exec` ran: list them, show one.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Fleet-wide: what berth runs on each host (containers, state, ports, recent output).
    Inspect {
        /// Only this app.
        app: Option<String>,
        /// Only hosts whose labels match, k=v,k2=v2 (own labels and the
        /// automatic os, arch and hostname).
        #[arg(long, default_value = "")]
        selector: String,
    },
    /// The fleet: list, show, label and revoke agents.
    #[command(subcommand)]
    Agents(agents::AgentsCommand),
    /// Join tokens for new agents.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Credentials the controller holds for pulling images.
    #[command(subcommand)]
    Registry(tokens::RegistryCommand),
    /// Secrets of an app in an environment, or of the fleet: set (the
    /// value from standard input), ls, rm. Values are never shown.
    #[command(subcommand)]
    Secret(secrets::SecretCommand),
    /// Outgoing webhooks (admins): add (prints the signing secret once),
    /// ls, rm, enable, test, deliveries.
    #[command(subcommand)]
    Webhook(webhooks::WebhookCommand),
    /// Git push hooks (operators): add (prints the URL path and secret
    /// for the git host once), ls, rm. A push of the hook's ref is
    /// fetched by a build agent and deployed.
    #[command(subcommand)]
    Hook(hooks::HookCommand),
    /// An app's resources (`[resources.NAME]`): their volume snapshots,
    /// and putting one back (operators).
    #[command(subcommand)]
    Resource(resources::ResourceCommand),
    /// People and their roles (admin).
    #[command(subcommand)]
    Users(people::UsersCommand),
    /// API tokens for CI and scripts (`Authorization: Bearer`).
    #[command(subcommand)]
    ApiTokens(people::ApiTokensCommand),
    /// Show who the credential belongs to and its role.
    Whoami,
    /// Check that the controller answers and can store new work; exits 1
    /// when it cannot (for supervisors and container health checks).
    Health,
}

/// Result of a command: the exit code to use.
pub type Outcome = Result<i32, Failure>;

/// Everything a command needs: the client and the output format.
pub struct Session {
    pub client: CliClient<Channel>,
    pub format: Format,
    /// The controller address in use (the credential's, or `--controller`;
    /// a comma-separated list for several controllers of one store).
    pub controller: String,
    link: connection::Link,
}

/// Runs the CLI and returns the process exit code.
pub async fn run(args: Args) -> i32 {
    let format = args.output;
    let mut session = match connect(&args).await {
        Ok(session) => session,
        Err(failure) => return report(failure, format),
    };
    let result = dispatch(&mut session, args.command).await;
    match result {
        Ok(code) => code,
        Err(failure) if failure.broken => {
            report(explain_broken(&mut session, failure).await, format)
        }
        Err(failure) => report(failure, format),
    }
}

/// Prints a failure and returns its exit code: for people on stderr, and
/// with `-o json` also as `{"error": {"code", "message", "exit_code"}}` on
/// stdout, where a script reads the output.
fn report(failure: Failure, format: Format) -> i32 {
    if !failure.message.is_empty() {
        eprintln!("error: {}", failure.message);
    }
    if format == Format::Json && !failure.message.is_empty() {
        let error = serde_json::json!({
            "error": {
                "code": failure.machine_code(),
                "message": failure.message,
                "exit_code": failure.code,
            }
        });
        println!("{error}");
    }
    failure.code
}

/// A connection that broke mid-call: if the controller now accepts this
/// credential, it went away (a restart) rather than refusing it, and the
/// message says so.
async fn explain_broken(session: &mut Session, failure: Failure) -> Failure {
    let probe = tokio::time::timeout(
        Duration::from_secs(10),
        session.client.who_am_i(berth_proto::v1::WhoAmIRequest {}),
    )
    .await;
    match probe {
        Ok(Ok(_)) => Failure::new(
            exit::FAILED,
            "the connection to the controller broke during the call (it may have restarted); your credential is accepted (checked just now), so run the command again; what the call asked for may already have happened (`berth ls` shows it)",
        ),
        Ok(Err(status)) if status.code() == Code::Unavailable => Failure::new(
            exit::FAILED,
            format!(
                "the connection to the controller broke during the call, and it does not answer now ({}); is it running?",
                status.message()
            ),
        ),
        _ => failure,
    }
}

/// Runs one subcommand on an open session.
async fn dispatch(session: &mut Session, command: Command) -> Outcome {
    match command {
        Command::Deploy(deploy) => deploy::deploy(session, deploy).await,
        Command::Watch(args) => watch::watch(session, args).await,
        Command::Ls(ls) => show::ls(session, ls).await,
        Command::Show { id } => show::show(session, &id).await,
        Command::Logs(logs) => logs::logs(session, logs).await,
        Command::Apps(command) => apps::run(session, command).await,
        Command::Metrics(command) => metrics::run(session, command).await,
        Command::Env(command) => environments::run(session, command).await,
        Command::Status {
            controllers: true, ..
        } => controllers::controllers(session).await,
        Command::Status { environment, .. } => status::status(session, environment).await,
        Command::Stop(args) => stop::stop(session, args).await,
        Command::Delete(args) => stop::delete(session, args).await,
        Command::Cancel { id, detach } => lifecycle::cancel(session, &id, detach).await,
        Command::Approve(args) => approvals::approve(session, args).await,
        Command::Retry(args) => lifecycle::retry(session, args).await,
        Command::Redeploy(args) => lifecycle::redeploy(session, args).await,
        Command::Rollback(args) => lifecycle::rollback(session, args).await,
        Command::Start(args) => lifecycle::start(session, args).await,
        Command::Purge { id } => lifecycle::purge(session, &id).await,
        Command::Audit(args) => lifecycle::audit(session, args).await,
        Command::Exec(args) => exec::exec(session, args).await,
        Command::Jobs(command) => jobs::run(session, command).await,
        Command::Inspect { app, selector } => agents::inspect(session, app, selector).await,
        Command::Agents(command) => agents::run(session, command).await,
        Command::Token(command) => tokens::run(session, command).await,
        Command::Registry(command) => tokens::registry(session, command).await,
        Command::Secret(command) => secrets::run(session, command).await,
        Command::Webhook(command) => webhooks::run(session, command).await,
        Command::Hook(command) => hooks::run(session, command).await,
        Command::Resource(command) => resources::run(session, command).await,
        Command::Users(command) => people::users(session, command).await,
        Command::ApiTokens(command) => people::api_tokens(session, command).await,
        Command::Health => health::health(session).await,
        Command::Whoami => {
            let me = session
                .client
                .who_am_i(berth_proto::v1::WhoAmIRequest {})
                .await?
                .into_inner();
            output::emit(
                session.format,
                &serde_json::json!({"principal": me.principal, "role": me.role}),
                || format!("{} ({})", me.principal, me.role),
            );
            Ok(exit::OK)
        }
    }
}
