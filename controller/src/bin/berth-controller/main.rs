//! `berth-controller`: init a data directory, serve it, or run a throwaway
//! dev setup. The work lives in the `berth_controller` library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_controller::dev::DevOptions;
use berth_controller::init::InitOptions;
use berth_controller::rotate::RotateOptions;
use berth_controller::store_choice::StoreArgs;
use clap::{Parser, Subcommand};

mod serve;
mod store_commands;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "berth-controller",
    version,
    about = "berth's controller daemon"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the CA, the server certificate and the admin credential.
    Init {
        #[arg(long, default_value = "/var/lib/berth-controller")]
        data_dir: PathBuf,
        /// The name (DNS or IP) the CLI and agents use to reach this controller.
        #[arg(long)]
        name: Option<String>,
        /// Extra DNS names or IP addresses for the server certificate.
        #[arg(long = "san")]
        sans: Vec<String>,
        /// Port written into the admin credential.
        #[arg(long, default_value_t = 7443)]
        port: u16,
        /// Where to write the admin credential bundle (default DATA_DIR/admin.conf).
        #[arg(long)]
        admin_out: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace the server certificate and key with new ones from the same
    /// CA (before it expires, or for new names). Agents and CLI credentials
    /// trust the CA, so they keep working; restart the controller to use it.
    RotateServerCert {
        #[arg(long, default_value = "/var/lib/berth-controller")]
        data_dir: PathBuf,
        /// The name (DNS or IP) the CLI and agents use to reach this
        /// controller (default: the names of the current certificate).
        #[arg(long)]
        name: Option<String>,
        /// Extra DNS names or IP addresses (with --name).
        #[arg(long = "san", requires = "name")]
        sans: Vec<String>,
    },
    /// Make a new secrets key (keys/secrets.key) and encrypt every secret
    /// and registry password again under it. Stop the controller first;
    /// a crash at any point leaves a directory it starts from.
    RotateKey {
        #[arg(long, default_value = "/var/lib/berth-controller")]
        data_dir: PathBuf,
    },
    #[command(flatten)]
    Store(store_commands::StoreCommand),
    /// Serve agents and the CLI.
    Serve(Box<serve::ServeArgs>),
    /// A throwaway controller plus one local agent, for trying berth.
    Dev {
        /// Keep state here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long, default_value = "127.0.0.1:7443")]
        listen: SocketAddr,
        #[arg(long, default_value = "local")]
        agent_name: String,
        #[arg(long, default_value = "role=web")]
        agent_labels: String,
    },
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            // refinery's step-by-step lines are ours to say once (store/kv/pg/connect.rs);
            // PostgreSQL's notices (a migration table that exists) are not news.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,refinery_core=warn,postgres::config=warn".into()),
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
            ExitCode::FAILURE
        }
    }
}

async fn command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init {
            data_dir,
            name,
            sans,
            port,
            admin_out,
            store,
        } => {
            let name = match name {
                Some(name) => name,
                None => hostname(),
            };
            let out = berth_controller::init::init(&InitOptions {
                data_dir: data_dir.clone(),
                name,
                sans,
                port,
                admin_out,
                store,
            })
            .await?;
            println!("initialized {}", data_dir.display());
            println!(
                "admin credential: {} (mode 0600; copy it to ~/.config/berth/config on your workstation)",
                out.display()
            );
            println!(
                "start the controller: {}",
                berth_controller::init::serve_hint(&data_dir, port)
            );
            Ok(())
        }
        Command::RotateServerCert {
            data_dir,
            name,
            sans,
        } => {
            let info = berth_controller::rotate::rotate_server_cert(&RotateOptions {
                data_dir,
                name,
                sans,
            })?;
            println!(
                "new server certificate {} for {}, valid until {}",
                info.serial,
                info.names.join(", "),
                berth_shared::time::rfc3339(info.not_after_ms)
            );
            println!(
                "restart the controller to use it (systemctl restart berth-controller); agents reconnect by themselves"
            );
            Ok(())
        }
        Command::RotateKey { data_dir } => {
            let rotated = berth_controller::rotate_key::rotate_key(&data_dir).await?;
            let resealed = rotated.resealed;
            println!(
                "new secrets key {} (was {}): re-encrypted {} secret versions, {} registry passwords and {} webhooks and git hooks",
                rotated.new, rotated.old, resealed.secrets, resealed.registries, resealed.webhooks
            );
            println!("start the controller again (systemctl start berth-controller)");
            Ok(())
        }
        Command::Store(command) => store_commands::run(command).await,
        Command::Serve(args) => serve::run(*args).await,
        Command::Dev {
            data_dir,
            listen,
            agent_name,
            agent_labels,
        } => {
            let agent_labels = berth_shared::labels::parse_labels(&agent_labels)
                .map_err(|err| anyhow::anyhow!("--agent-labels: {err}"))?;

            berth_controller::dev::run(
                DevOptions {
                    data_dir,
                    listen,
                    agent_name,
                    agent_labels,
                },
                on_signal(),
            )
            .await
        }
    }
}

fn hostname() -> String {
    berth_controller::server::host_name().unwrap_or_else(|| "localhost".into())
}

fn on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            trigger.cancel();
        }
    });
    shutdown
}
