//! Several hosts on one machine: each host is a Linux network namespace
//! with one end of a veth pair, whose other end is a port of a bridge in a
//! "switch" namespace of its own.
//!
//! The bridge lives in its own namespace because once Docker has run on a
//! machine, the root namespace's iptables FORWARD policy is DROP and bridged
//! traffic passes through it; a fresh namespace has its own empty iptables.
//! Every interface is created inside the fleet's namespaces (never in the
//! root one), and every address comes from 198.18.0.0/15, the range set
//! aside for network tests, so test traffic never leaves them.
//! Namespace names carry the test process id and a counter, so parallel
//! tests never collide and a later run can tell leftovers of a crashed one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::skip;

/// Every namespace a [`Fleet`] creates is named `berth-tPID-N-...`.
const PREFIX: &str = "berth-t";
/// The bridge in the switch namespace.
const BRIDGE: &str = "br0";
/// Each host's end of its veth pair, inside the host's namespace.
const HOST_LINK: &str = "eth0";

/// Fleets made by this process so far; part of their names and subnets.
static FLEETS: AtomicU32 = AtomicU32::new(0);

/// One host of a [`Fleet`].
#[derive(Clone, Debug)]
pub struct Host {
    /// The name the test uses (`web-1`).
    pub name: String,
    /// Its network namespace.
    pub netns: String,
    /// Its address (198.18.X.Y, a /24 shared with its fleet only).
    pub ip: String,
    /// The bridge port its veth pair ends in, inside the switch namespace.
    port: String,
}

/// Network namespaces joined by a bridge; removed, with every process
/// still running in them, when dropped.
pub struct Fleet {
    /// The namespace holding the bridge.
    switch: String,
    hosts: Vec<Host>,
    /// Namespaces created so far, removed on drop (also after a failure
    /// half-way through [`Fleet::start`]).
    created: Vec<String>,
}

/// The `ip` binary, also where `PATH` lacks the sbin directories.
pub fn ip_binary() -> PathBuf {
    admin_binary("ip")
}

/// An administration program (`ip`, `iptables`), also where `PATH` lacks
/// the sbin directories.
fn admin_binary(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(program))
}

/// A command for `program`, run inside network namespace `netns` when one
/// is given. `ip netns exec` execs the program after entering the
/// namespace, so the child's PID is the program's own and killing it by
/// PID works as for a plain child.
pub fn command_in(netns: Option<&str>, program: &Path) -> Command {
    match netns {
        Some(netns) => {
            let mut command = Command::new(ip_binary());
            command.args(["netns", "exec", netns]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Runs `ip ARGS`; panics with its stderr when it fails.
fn ip(args: &[&str]) {
    let output = Command::new(ip_binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("run ip {}: {err}", args.join(" ")));
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// Runs `ip ARGS` and returns stdout, or an empty string when it fails
/// (for cleanup, which must go on regardless).
fn ip_quiet(args: &[&str]) -> String {
    Command::new(ip_binary())
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

/// What this machine lacks to build namespaces, if anything.
fn missing_capability() -> Option<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid: real effective saved filesystem"
    let effective_uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if effective_uid != Some("0") {
        return Some("root, to create network namespaces");
    }
    if !answers_version(&ip_binary()) {
        return Some("the ip command (apt-get install iproute2)");
    }
    None
}

/// Whether `program -V` runs and succeeds (the program is installed).
fn answers_version(program: &Path) -> bool {
    Command::new(program)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Kills (SIGKILL, by PID) every process in `netns`. Only processes a
/// fleet started (and their children) can be there, since its names are
/// unique to it.
fn kill_processes(netns: &str) {
    for pid in ip_quiet(&["netns", "pids", netns]).split_whitespace() {
        if pid.parse::<u32>().is_ok() {
            let _ = Command::new("kill")
                .args(["-9", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Kills the processes in `netns`, then removes it. Removing a namespace
/// also removes the veth ends inside it.
fn remove_namespace(netns: &str) {
    kill_processes(netns);
    let _ = ip_quiet(&["netns", "delete", netns]);
}

/// Removes namespaces left by earlier runs of the tests that were killed
/// before they could clean up: those whose name carries the id of a
/// process that no longer exists.
fn remove_leftovers() {
    let own = std::process::id().to_string();
    for line in ip_quiet(&["netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        let is_dead =
            pid.parse::<u32>().is_ok() && pid != own && !Path::new("/proc").join(pid).exists();
        if is_dead {
            remove_namespace(name);
        }
    }
}

/// A distinct /24 inside 198.18.0.0/15 for this process's `fleet`-th fleet
/// ("198.18.X" or "198.19.X"): fleets of one process never share one.
fn subnet(fleet: u32) -> String {
    let index = std::process::id().wrapping_mul(37).wrapping_add(fleet) % 512;
    format!("198.{}.{}", 18 + index / 256, index % 256)
}

impl Fleet {
    /// Builds a switch namespace with a bridge and one namespace per name
    /// in `hosts`, each with its own address; or skips `test` (printing
    /// why) when this machine cannot (not root, no `ip`).
    pub fn start(test: &str, hosts: &[&str]) -> Option<Fleet> {
        if let Some(missing) = missing_capability() {
            skip(test, missing);
            return None;
        }
        remove_leftovers();
        let number = FLEETS.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{number}", std::process::id());
        let mut fleet = Fleet {
            switch: format!("{name}-sw"),
            hosts: Vec::new(),
            created: Vec::new(),
        };
        fleet.add_switch();
        let subnet = subnet(number);
        for (index, host) in hosts.iter().enumerate() {
            let host = Host {
                name: host.to_string(),
                netns: format!("{name}-h{index}"),
                ip: format!("{subnet}.{}", index + 1),
                port: format!("p{index}"),
            };
            fleet.add_host(&host);
            fleet.hosts.push(host);
        }
        Some(fleet)
    }

    /// Like [`Fleet::start`], for a test that also drops packets (see
    /// [`Fleet::partition`]); skips `test` when this machine has no
    /// iptables.
    pub fn start_filtered(test: &str, hosts: &[&str]) -> Option<Fleet> {
        if !answers_version(&admin_binary("iptables")) {
            skip(test, "iptables (apt-get install iptables)");
            return None;
        }
        Fleet::start(test, hosts)
    }

    fn add_namespace(&mut self, netns: &str) {
        ip(&["netns", "add", netns]);
        self.created.push(netns.to_string());
        ip(&["-n", netns, "link", "set", "lo", "up"]);
    }

    fn add_switch(&mut self) {
        let switch = self.switch.clone();
        self.add_namespace(&switch);
        ip(&["-n", &switch, "link", "add", BRIDGE, "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", BRIDGE, "up"]);
    }

    fn add_host(&mut self, host: &Host) {
        self.add_namespace(&host.netns);
        // The peer is created straight in the switch namespace, so no
        // interface ever appears in the root namespace.
        ip(&[
            "-n",
            &host.netns,
            "link",
            "add",
            HOST_LINK,
            "type",
            "veth",
            "peer",
            "name",
            &host.port,
            "netns",
            &self.switch,
        ]);
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &host.port,
            "master",
            BRIDGE,
        ]);
        ip(&["-n", &self.switch, "link", "set", &host.port, "up"]);
        let address = format!("{}/24", host.ip);
        ip(&["-n", &host.netns, "addr", "add", &address, "dev", HOST_LINK]);
        ip(&["-n", &host.netns, "link", "set", HOST_LINK, "up"]);
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|host| host.name == name)
            .unwrap_or_else(|| panic!("no host {name} in this fleet"))
    }

    /// The network namespace of host `name`.
    pub fn netns(&self, name: &str) -> &str {
        &self.host(name).netns
    }

    /// The address of host `name`.
    pub fn ip(&self, name: &str) -> &str {
        &self.host(name).ip
    }

    /// Every namespace of this fleet (the switch's included).
    pub fn namespaces(&self) -> Vec<String> {
        self.created.clone()
    }

    /// Pulls host `name`'s cable at the switch: its bridge port goes down,
    /// so from then on its packets are dropped silently in both directions
    /// (a host that stops answering, not one that refuses).
    pub fn cut(&self, name: &str) {
        let port = &self.host(name).port;
        ip(&["-n", &self.switch, "link", "set", port, "down"]);
    }

    /// Plugs host `name` back in after [`Fleet::cut`].
    pub fn restore(&self, name: &str) {
        let port = &self.host(name).port;
        ip(&["-n", &self.switch, "link", "set", port, "up"]);
    }

    /// Drops, at host `name`, every packet coming from host `peer`: no
    /// answer and no reset, so `peer`'s packets vanish while `name`'s own
    /// still reach it (a half-open link). Each namespace has its own
    /// firewall, so nothing outside the fleet is touched.
    pub fn drop_from(&self, name: &str, peer: &str) {
        self.iptables(name, &["-I", "INPUT", "-s", self.ip(peer), "-j", "DROP"]);
    }

    /// Drops, at host `name`, every packet to or from host `peer`: a
    /// partition neither side is told of (unlike a cut cable, the link
    /// stays up).
    pub fn partition(&self, name: &str, peer: &str) {
        self.drop_from(name, peer);
        self.iptables(name, &["-I", "OUTPUT", "-d", self.ip(peer), "-j", "DROP"]);
    }

    /// Removes every rule [`Fleet::drop_from`] and [`Fleet::partition`]
    /// put on host `name`.
    pub fn heal(&self, name: &str) {
        self.iptables(name, &["-F"]);
    }

    fn iptables(&self, name: &str, args: &[&str]) {
        let output = command_in(Some(self.netns(name)), &admin_binary("iptables"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run iptables");
        assert!(
            output.status.success(),
            "iptables {} on {name} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Every process first, so none is left in a namespace that is no
        // longer named anywhere; then hosts before the switch.
        for netns in &self.created {
            kill_processes(netns);
        }
        for netns in self.created.iter().rev() {
            remove_namespace(netns);
        }
    }
}
