//! `berth-agent`: join a controller, then run.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_agent::join::{JoinOptions, Joined};
use berth_agent::{RunConfig, config::Files};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "berth-agent",
    version,
    about = "berth's agent: runs deployment stages on this host"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll this host with a controller using a join token.
    Join {
        /// Controller address, https://HOST:PORT; several controllers on
        /// one PostgreSQL store as a list, https://A:7443,https://B:7443
        /// (the agent fails over between them). Default: the controllers
        /// the token names (`berth token create` writes its own in it).
        #[arg(long)]
        controller: Option<String>,
        /// Join token from `berth token create`: best in BERTH_JOIN_TOKEN,
        /// or `--token -` to read it from stdin, or --token-file; on the
        /// command line it shows in the process list.
        #[arg(
            long,
            env = "BERTH_JOIN_TOKEN",
            hide_env_values = true,
            required_unless_present = "token_file"
        )]
        token: Option<String>,
        /// A file holding the join token.
        #[arg(long, conflicts_with = "token")]
        token_file: Option<PathBuf>,
        #[arg(long, default_value = "/var/lib/berth-agent")]
        data_dir: PathBuf,
        /// Agent name (default: this host's name).
        #[arg(long)]
        name: Option<String>,
        /// Labels, k=v,k2=v2.
        #[arg(long, default_value = "")]
        labels: String,
    },
    /// Connect to the controller and run assigned work.
    Run {
        #[arg(long, default_value = "/var/lib/berth-agent")]
        data_dir: PathBuf,
        /// Tasks run at once.
        #[arg(long, default_value_t = 4)]
        slots: u32,
        /// Override the controller address (or comma-separated list)
        /// recorded at join time.
        #[arg(long)]
        controller: Option<String>,
        /// Docker's address; default DOCKER_HOST, else unix:///var/run/docker.sock.
        #[arg(long)]
        docker_host: Option<String>,
        /// Caddy's admin API, for [proxy] routes.
        #[arg(
            long,
            env = "BERTH_CADDY_ADMIN",
            default_value = "http://127.0.0.1:2019"
        )]
        caddy_admin: String,
        /// The port on which Caddy serves berth's plain-HTTP routes.
        #[arg(long, env = "BERTH_PROXY_HTTP_PORT", default_value_t = 80)]
        proxy_http_port: u16,
        /// The port on which Caddy serves berth's HTTPS routes.
        #[arg(long, env = "BERTH_PROXY_HTTPS_PORT", default_value_t = 443)]
        proxy_https_port: u16,
        /// Serve `GET /metrics` (Prometheus, OpenMetrics text) in plain
        /// HTTP on this address, e.g. 127.0.0.1:9465 (default: off).
        /// Another address than loopback is warned about: the metrics
        /// name apps.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command(args.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if err
                .downcast_ref::<berth_agent::connection::Refused>()
                .is_some()
            {
                ExitCode::from(berth_agent::connection::Refused::EXIT_CODE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Join {
            controller,
            token,
            token_file,
            data_dir,
            name,
            labels,
        } => {
            let token = join_token(token, token_file)?;
            let labels = berth_shared::labels::parse_labels(&labels)
                .map_err(|err| anyhow::anyhow!("--labels: {err}"))?;
            let name = match name {
                Some(name) => name,
                None => sysinfo::System::host_name()
                    .map_err(|_| anyhow::anyhow!("cannot read this host's name; pass --name"))?,
            };
            let files = Files::new(&data_dir);
            let joined = berth_agent::join::join(
                &files,
                &JoinOptions {
                    controller,
                    token,
                    name,
                    labels,
                },
            )
            .await?;
            // Run as root into a directory the package gave to the service
            // user, every file goes to that user, or the agent could not
            // read them.
            if let Some(owner) =
                berth_shared::ownership::hand_over(&data_dir).map_err(anyhow::Error::msg)?
            {
                eprintln!(
                    "gave the files in {} to {owner}, the directory's owner",
                    data_dir.display()
                );
            }
            match joined {
                Joined::New(identity) => {
                    eprintln!(
                        "joined {} as `{}` (agent id {})",
                        identity.controller, identity.name, identity.agent_id
                    );
                    eprintln!(
                        "start it with: berth-agent run --data-dir {}",
                        data_dir.display()
                    );
                }
                Joined::Already(identity) => {
                    eprintln!(
                        "already joined {} as `{}`; nothing changed (start it with: berth-agent run --data-dir {})",
                        identity.controller,
                        identity.name,
                        data_dir.display()
                    );
                }
            }
            Ok(())
        }
        Command::Run {
            data_dir,
            slots,
            controller,
            docker_host,
            caddy_admin,
            proxy_http_port,
            proxy_https_port,
            metrics_listen,
        } => {
            let shutdown = CancellationToken::new();
            let signals = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                signals.cancel();
            });
            berth_agent::run(
                RunConfig {
                    data_dir,
                    slots,
                    controller,
                    docker_host: docker_host
                        .unwrap_or_else(berth_agent::stage::docker::default_address),
                    caddy: berth_agent::stage::caddy::Caddy {
                        admin: caddy_admin,
                        http_port: proxy_http_port,
                        https_port: proxy_https_port,
                    },
                    metrics_listen,
                },
                shutdown,
            )
            .await
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The join token from `--token` (`-` for stdin), BERTH_JOIN_TOKEN or
/// `--token-file`; a token typed on the command line is accepted with a
/// warning, since every user of the host can read it in the process list.
fn join_token(token: Option<String>, file: Option<PathBuf>) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let token = match (token, file) {
        (_, Some(file)) => std::fs::read_to_string(&file)
            .with_context(|| format!("read the join token from --token-file {}", file.display()))?,
        (Some(dash), None) if dash == "-" => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("read the join token from stdin (--token -)")?;
            line
        }
        (Some(token), None) => {
            let from_env = std::env::var("BERTH_JOIN_TOKEN").is_ok_and(|env| env == token);
            if !from_env {
                eprintln!(
                    "warning: --token on the command line is visible to every user of this host in the process list; pass it in BERTH_JOIN_TOKEN, with --token-file FILE, or on stdin with --token -"
                );
            }
            token
        }
        (None, None) => anyhow::bail!(
            "no join token: set BERTH_JOIN_TOKEN, or pass --token-file FILE or --token - (stdin)"
        ),
    };
    Ok(token.trim().to_string())
}
