//! A replicated PostgreSQL for failover tests: a primary and a synchronous
//! standby of Debian's PostgreSQL 15 under Patroni, with one etcd holding
//! the cluster's state (Debian's `patroni`, `etcd-server`,
//! `python3-etcd`), each on free loopback ports and in a directory of its
//! own, run as the `postgres` user. [`Cluster::url`] is the multi-host
//! address a controller follows to whichever node is primary
//! (`target_session_attrs=read-write`). Dropping the cluster kills every
//! process it started.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::caddy::free_port;
use crate::process::Running;

/// Where Debian keeps PostgreSQL 15's programs.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// One Patroni node and the PostgreSQL it runs.
struct Node {
    name: String,
    config: PathBuf,
    data: PathBuf,
    port: u16,
    process: Option<Running>,
}

/// etcd and two Patroni nodes.
pub struct Cluster {
    dir: tempfile::TempDir,
    etcd: Option<Running>,
    nodes: Vec<Node>,
    uid: u32,
    gid: u32,
}

/// What is missing to run a cluster here, if anything.
pub fn missing() -> Option<String> {
    let found = |program: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    let wanted: Vec<&str> = ["patroni", "patronictl", "etcd"]
        .into_iter()
        .filter(|program| !found(program))
        .collect();
    if !wanted.is_empty() || !Path::new(PG_BIN).join("postgres").exists() {
        return Some(format!(
            "missing {} (apt-get install patroni etcd-server python3-etcd postgresql)",
            if wanted.is_empty() {
                PG_BIN.to_string()
            } else {
                wanted.join(", ")
            }
        ));
    }
    None
}

fn id_of(flag: &str) -> Result<u32> {
    let output = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .context("run id")?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("the postgres user's id")
}

impl Cluster {
    /// Starts etcd and two nodes and waits until one leads with the other
    /// as its synchronous standby.
    pub fn start() -> Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("berth-patroni-")
            .tempdir()
            .context("tempdir")?;
        let (uid, gid) = (id_of("-u")?, id_of("-g")?);
        // The postgres user walks into it; the data directories are its.
        chmod(dir.path(), 0o755)?;
        let etcd_client = free_port();
        let etcd_peer = free_port();
        let mut etcd = Command::new("etcd");
        etcd.args(["--name", "e1", "--data-dir"])
            .arg(dir.path().join("etcd"))
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{etcd_client}"),
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{etcd_client}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{etcd_peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{etcd_peer}"),
                "--initial-cluster",
                &format!("e1=http://127.0.0.1:{etcd_peer}"),
            ]);
        let etcd = Running::spawn(etcd, &dir.path().join("etcd.log"));
        let mut cluster = Cluster {
            dir,
            etcd: Some(etcd),
            nodes: Vec::new(),
            uid,
            gid,
        };
        for name in ["pg1", "pg2"] {
            let node = cluster.write_node(name, etcd_client)?;
            cluster.nodes.push(node);
        }
        // The first node bootstraps; the second clones it once it leads.
        cluster.spawn(0);
        cluster.wait_roles(|roles| roles.iter().any(|(_, role)| role == "Leader"))?;
        cluster.spawn(1);
        cluster.wait_roles(|roles| {
            roles.iter().any(|(_, role)| role == "Leader")
                && roles.iter().any(|(_, role)| role == "Sync Standby")
        })?;
        Ok(cluster)
    }

    fn write_node(&self, name: &str, etcd_client: u16) -> Result<Node> {
        let root = self.dir.path().join(name);
        std::fs::create_dir_all(root.join("sock")).context("make the node's directory")?;
        let port = free_port();
        let rest = free_port();
        let data = root.join("data");
        let config = root.join("patroni.yml");
        let text = format!(
            r#"scope: berth
name: {name}
restapi: {{listen: "127.0.0.1:{rest}", connect_address: "127.0.0.1:{rest}"}}
etcd3: {{hosts: "127.0.0.1:{etcd_client}"}}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    synchronous_mode: true
    postgresql:
      use_pg_rewind: false
      parameters: {{synchronous_commit: "on", max_connections: 200}}
  initdb: [{{encoding: UTF8}}]
  pg_hba: ["local all all trust", "host all all 127.0.0.1/32 trust", "local replication all trust", "host replication all 127.0.0.1/32 trust"]
postgresql:
  listen: "127.0.0.1:{port}"
  connect_address: "127.0.0.1:{port}"
  data_dir: {data}
  bin_dir: {PG_BIN}
  pgpass: {root}/pgpass
  authentication:
    replication: {{username: replicator, password: replicator}}
    superuser: {{username: postgres, password: postgres}}
  parameters: {{unix_socket_directories: "{root}/sock"}}
"#,
            data = data.display(),
            root = root.display(),
        );
        std::fs::write(&config, text).context("write the Patroni configuration")?;
        let owned = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&root)
            .status()
            .context("run chown")?;
        if !owned.success() {
            bail!("chown {} to postgres failed", root.display());
        }
        Ok(Node {
            name: name.to_string(),
            config,
            data,
            port,
            process: None,
        })
    }

    fn spawn(&mut self, index: usize) {
        let node = &self.nodes[index];
        let mut command = Command::new("patroni");
        command
            .arg(&node.config)
            .env("HOME", self.dir.path())
            .uid(self.uid)
            .gid(self.gid);
        let log = self.dir.path().join(format!("{}.log", node.name));
        self.nodes[index].process = Some(Running::spawn(command, &log));
    }

    /// The address a controller keeps: both nodes, the primary chosen.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        format!(
            "postgres://postgres@{}/postgres?target_session_attrs=read-write&sslmode=disable",
            hosts.join(",")
        )
    }

    /// Each member's name and role as `patronictl list` shows them.
    pub fn roles(&self) -> Result<Vec<(String, String)>> {
        let output = Command::new("patronictl")
            .arg("-c")
            .arg(&self.nodes[0].config)
            .args(["list", "-f", "json"])
            .output()
            .context("run patronictl")?;
        let members: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
        Ok(members
            .as_array()
            .into_iter()
            .flatten()
            .filter(|member| member["State"] == "running" || member["State"] == "streaming")
            .map(|member| {
                (
                    member["Member"].as_str().unwrap_or_default().to_string(),
                    member["Role"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    /// Waits (up to 90 s) until the members' roles satisfy `ready`.
    pub fn wait_roles(&self, ready: impl Fn(&[(String, String)]) -> bool) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let roles = self.roles()?;
            if ready(&roles) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the Patroni cluster did not reach its roles (now {roles:?}); logs in {}",
                    self.dir.path().display()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The leader's name.
    pub fn leader(&self) -> Result<String> {
        self.roles()?
            .into_iter()
            .find(|(_, role)| role == "Leader")
            .map(|(name, _)| name)
            .context("no leader")
    }

    /// Kills the leader as a lost machine goes: Patroni and its
    /// PostgreSQL with SIGKILL. Returns its name.
    pub fn kill_leader(&mut self) -> Result<String> {
        let leader = self.leader()?;
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.name == leader)
            .context("the leader's node")?;
        if let Some(mut process) = node.process.take() {
            process.kill9();
        }
        kill_postmaster(&node.data);
        Ok(leader)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                process.kill9();
            }
            kill_postmaster(&node.data);
        }
        if let Some(mut etcd) = self.etcd.take() {
            etcd.kill9();
        }
    }
}

/// SIGKILL to the PostgreSQL whose data directory is `data` (its backends
/// end when they see it gone).
fn kill_postmaster(data: &Path) {
    let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return;
    };
    if let Some(pid) = text
        .lines()
        .next()
        .map(str::trim)
        .filter(|pid| !pid.is_empty())
    {
        let _ = Command::new("kill")
            .args(["-9", pid])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn chmod(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}
