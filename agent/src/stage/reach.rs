//! Does the published port reach the container berth just started? A
//! health probe to `127.0.0.1:PORT` accepts whatever answers there: on a
//! machine with a second Docker daemon (or any NAT rule or program on the
//! port), that may be another container. Before a new container takes
//! over, the agent opens a connection to the published port and looks in
//! the container's own network namespace (`/proc/PID/net/tcp*`) for it; if
//! it never arrives, the switch is refused with what holds the port.

use std::collections::HashSet;
use std::time::Duration;

/// How long the connection may take to show up in the container.
const ARRIVAL: Duration = Duration::from_secs(2);
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// `Ok` when a connection to `127.0.0.1:host_port` arrives in the network
/// namespace of process `pid` on `port`; `Err` with what holds the host
/// port otherwise (Docker's proxies for the container's own addresses
/// `own_ips` are not named: they are the container's). `Ok` too when the
/// container's sockets cannot be read (nothing to compare with), which is
/// logged.
pub async fn check(pid: i64, port: u32, host_port: &str, own_ips: &[String]) -> Result<(), String> {
    let Ok(pid) = u32::try_from(pid) else {
        return Ok(());
    };
    let Ok(before) = established(pid, port) else {
        tracing::debug!(
            pid,
            "cannot read the container's sockets; the published port is not verified"
        );
        return Ok(());
    };
    let address = format!("127.0.0.1:{host_port}");
    let stream = tokio::time::timeout(ARRIVAL, tokio::net::TcpStream::connect(&address)).await;
    let stream = match stream {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => return Err(format!("cannot connect to {address}: {err}")),
        Err(_) => return Err(format!("{address} did not accept a connection within 2s")),
    };
    let local = stream.local_addr().map(|addr| addr.port()).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + ARRIVAL;
    while tokio::time::Instant::now() < deadline {
        if let Ok(now) = established(pid, port)
            && now.difference(&before).next().is_some()
        {
            return Ok(());
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
    drop(stream);
    Err(format!(
        "a connection to {address} (from local port {local}) never reached the container: {}",
        holder(host_port, own_ips)
    ))
}

/// Remote ends of the established TCP connections to local `port` in the
/// network namespace of `pid`.
fn established(pid: u32, port: u32) -> std::io::Result<HashSet<String>> {
    let mut found = HashSet::new();
    let mut read_any = false;
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        read_any = true;
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(state)) =
                (fields.get(1), fields.get(2), fields.get(3))
            else {
                continue;
            };
            if *state == "01" && port_of(local) == Some(port) {
                found.insert((*remote).to_string());
            }
        }
    }
    if read_any {
        Ok(found)
    } else {
        Err(std::io::Error::other("no socket table"))
    }
}

/// The port of a `/proc/net/tcp` address (`HEXADDR:HEXPORT`).
fn port_of(address: &str) -> Option<u32> {
    let (_, port) = address.rsplit_once(':')?;
    u32::from_str_radix(port, 16).ok()
}

/// What listens on `host_port` in this network namespace, for the error.
fn holder(host_port: &str, own_ips: &[String]) -> String {
    let Ok(port) = host_port.parse::<u32>() else {
        return format!("host port {host_port} is not a number");
    };
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) == Some(&"0A")
                && fields.get(1).and_then(|local| port_of(local)) == Some(port)
                && let Some(inode) = fields.get(9)
            {
                inodes.insert(format!("socket:[{inode}]"));
            }
        }
    }
    let owners: Vec<String> = owners_of(&inodes)
        .into_iter()
        .filter(|owner| {
            !own_ips
                .iter()
                .any(|ip| owner.contains(&format!("-container-ip {ip} ")))
        })
        .collect();
    if owners.is_empty() {
        format!(
            "nothing else on this host listens on port {port} as far as berth can see, so a NAT rule sends it elsewhere (another Docker daemon's port mapping?); free the port or set another host_port"
        )
    } else {
        format!(
            "port {port} is answered by {} instead; another program (or another Docker daemon's container) holds it: free the port or set another host_port",
            owners.join(", ")
        )
    }
}

/// `program (pid N)` for each process holding one of `inodes`.
fn owners_of(inodes: &HashSet<String>) -> Vec<String> {
    let mut owners = Vec::new();
    if inodes.is_empty() {
        return owners;
    }
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return owners;
    };
    for process in processes.flatten() {
        let name = process.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|target| target.to_str().map(|t| inodes.contains(t)))
                .unwrap_or(false)
        });
        if holds {
            let command = std::fs::read(process.path().join("cmdline")).unwrap_or_default();
            let command: String = String::from_utf8_lossy(&command)
                .replace('\0', " ")
                .trim()
                .chars()
                .take(160)
                .collect();
            owners.push(format!("`{command}` (pid {pid})"));
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_from_proc_addresses() {
        assert_eq!(port_of("0100007F:1F90"), Some(8080));
        assert_eq!(port_of("00000000000000000000000000000000:0050"), Some(80));
        assert_eq!(port_of("nonsense"), None);
    }

    #[tokio::test]
    async fn a_connection_to_this_process_arrives_and_one_elsewhere_does_not() {
        // This test process plays the container: its own listener gets
        // the connection.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accept = tokio::spawn(async move { listener.accept().await.map(|(stream, _)| stream) });
        let pid = i64::from(std::process::id());
        check(pid, u32::from(port), &port.to_string(), &[])
            .await
            .expect("the connection arrives here");
        drop(accept);

        // A port answered by a listener whose sockets are looked for on
        // another port: the connection never shows up there.
        let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let other_port = other.local_addr().expect("addr").port();
        let error = check(pid, 1, &other_port.to_string(), &[])
            .await
            .expect_err("nothing arrives on port 1");
        assert!(error.contains("never reached the container"), "{error}");
        assert!(
            error.contains(&format!("(pid {})", std::process::id())),
            "{error}"
        );
    }
}
