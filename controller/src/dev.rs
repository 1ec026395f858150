//! `berth-controller dev`: a throwaway controller plus one local agent, for
//! trying berth on one machine (like `nomad agent -dev`). The agent is the
//! real `berth-agent` binary, started as a child process and joined with a
//! real token over mTLS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, Result, bail};
use berth_shared::credentials::JoinToken;
use berth_shared::labels::Labels;
use berth_shared::pki::{first_cert_der, spki_pin};
use berth_shared::record::Timestamp;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::init::{InitOptions, init};
use crate::paths::DataDir;
use crate::server::{DEFAULT_LOST_GRACE, ServeConfig};
use crate::store::{Store, TokenRecord, tokens_hash};

/// Settings of `dev`.
#[derive(Clone, Debug)]
pub struct DevOptions {
    /// Where to keep everything; default: a new temporary directory.
    pub data_dir: Option<PathBuf>,
    pub listen: SocketAddr,
    pub agent_name: String,
    pub agent_labels: Labels,
}

/// The `berth-agent` binary next to this executable.
fn agent_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("find this executable")?;
    let agent = me.with_file_name("berth-agent");
    if !agent.exists() {
        bail!(
            "berth-agent was not found next to {}; build it with `cargo build --release`",
            me.display()
        );
    }
    Ok(agent)
}

/// Writes a one-use join token straight into the (not yet served) store.
async fn local_token(dir: &DataDir) -> Result<String> {
    let store = Store::open(&dir.store()).context("open the store")?;
    let ca_pem = std::fs::read_to_string(dir.ca_cert()).context("read the CA")?;
    let pin = spki_pin(&first_cert_der(&ca_pem)?)?;
    let token = JoinToken {
        id: "devagent".into(),
        secret: format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        ),
        ca_pin: pin,
        controllers: Vec::new(),
    };
    let now = Timestamp::now();
    store.put_token(&TokenRecord {
        id: token.id.clone(),
        secret_sha256: tokens_hash(&token.secret),
        labels: Labels::new(),
        created_at: now,
        expires_at: Timestamp(now.0 + 600_000),
        uses_allowed: 1,
        uses: 0,
        revoked: false,
        created_by: "dev".into(),
        joined: Vec::new(),
    })?;
    store.flush().await?;
    Ok(token.encode())
}

async fn start_agent(options: &DevOptions, root: &Path, url: &str, token: &str) -> Result<Child> {
    let agent = agent_binary()?;
    let agent_dir = root.join("agent");
    let labels = berth_shared::labels::format_labels(&options.agent_labels);
    let status = Command::new(&agent)
        .args(["join", "--controller", url, "--data-dir"])
        .arg(&agent_dir)
        .args(["--name", &options.agent_name, "--labels", &labels])
        // The token travels in the environment, not on the command line.
        .env("BERTH_JOIN_TOKEN", token)
        .status()
        .await
        .context("run berth-agent join")?;
    if !status.success() {
        bail!("berth-agent join failed ({status})");
    }
    Command::new(&agent)
        .args(["run", "--data-dir"])
        .arg(&agent_dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start berth-agent run")
}

/// Runs the dev controller and its agent until `shutdown`.
pub async fn run(options: DevOptions, shutdown: CancellationToken) -> Result<()> {
    let (root, _temp) = match &options.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("berth-dev-")
                .tempdir()
                .context("create a temporary directory")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let controller_dir = root.join("controller");
    let dir = DataDir::new(&controller_dir);
    if !dir.ca_cert().exists() {
        let options = InitOptions {
            data_dir: controller_dir.clone(),
            name: options.listen.ip().to_string(),
            sans: Vec::new(),
            port: options.listen.port(),
            admin_out: None,
            store: Default::default(),
        };
        init(&options).await?;
    }
    let token = if root.join("agent/agent.toml").exists() {
        String::new()
    } else {
        local_token(&dir).await?
    };
    let (listening_tx, listening_rx) = tokio::sync::oneshot::channel();
    let config = ServeConfig {
        data_dir: controller_dir,
        store: Default::default(),
        listen: options.listen,
        lost_grace: DEFAULT_LOST_GRACE,
        log_retention: crate::server::DEFAULT_LOG_RETENTION,
        agent_cert_lifetime: berth_shared::pki::AGENT_LIFETIME,
        trigger_limit: crate::server::DEFAULT_TRIGGER_LIMIT,
        join_failure_limit: crate::server::DEFAULT_JOIN_FAILURE_LIMIT,
        blob_budget: crate::server::DEFAULT_BLOB_BUDGET,
        blob_dir: None,
        connections: crate::listener::Limits::default(),
        approval_ttl: crate::ops::approvals::DEFAULT_APPROVAL_TTL,
        webhook_give_up: crate::webhooks::DEFAULT_GIVE_UP,
        // A port of its own: a second dev controller would find the
        // default one taken.
        http: crate::http::HttpConfig {
            listen: crate::http::HttpListen::On(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            ..Default::default()
        },
        // No metrics: `dev` is for trying berth, not for watching it.
        metrics: Default::default(),
    };
    let server = tokio::spawn(crate::server::run(
        config,
        shutdown.clone(),
        move |listening| {
            let _ = listening_tx.send(listening.clone());
        },
    ));
    let listening = listening_rx.await.context("the controller did not start")?;
    let address = listening.grpc;
    let url = format!("https://{address}");
    // The port may have been chosen by the system (--listen ...:0).
    let mut bundle =
        berth_shared::credentials::Bundle::load(&dir.admin_bundle()).map_err(anyhow::Error::msg)?;
    bundle.controller = url.clone();
    bundle
        .save(&dir.admin_bundle())
        .map_err(anyhow::Error::msg)?;
    let mut agent = start_agent(&options, &root, &url, &token).await?;
    info!(%url, "dev controller and agent running");
    println!(
        "berth dev: controller on {url}, agent `{}` joined",
        options.agent_name
    );
    if let Some((_, api)) = &listening.http {
        println!("berth dev: HTTP API on {api} (tokens: berth api-tokens create --name NAME)");
        println!(
            "berth dev: dashboard on {api}/ (to sign in as admin, open the link `berth users setup-link admin` prints)"
        );
    }
    println!("credential bundle: {}", dir.admin_bundle().display());
    println!("try:  export BERTH_CONFIG={}", dir.admin_bundle().display());
    println!("      berth agents ls && berth deploy --bundle examples/hello");
    println!(
        "stop with Ctrl-C{}",
        if options.data_dir.is_none() {
            " (everything here is removed)"
        } else {
            ""
        }
    );
    tokio::select! {
        () = shutdown.cancelled() => {}
        status = agent.wait() => eprintln!("the dev agent exited ({status:?})"),
    }
    shutdown.cancel();
    let _ = agent.start_kill();
    let _ = agent.wait().await;
    server.await.context("controller task")??;
    Ok(())
}
