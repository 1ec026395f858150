//! Starting the controller afresh in its own process: `exec` of its own
//! binary with its own arguments, keeping its pid (a supervisor sees no
//! exit), its standard streams and its address. Every file, socket and
//! thread of the old image goes, sled's hold on its database with them;
//! what the controller acknowledged is on disk, and agents and CLI
//! watchers reconnect as after any restart. Used when the store cannot be
//! reopened in place (see `store/health.rs`).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;

/// The exit code when starting afresh failed: `EX_TEMPFAIL`, for a
/// supervisor to start it again.
pub const TEMPFAIL: i32 = 75;

/// Replaces this process with a new `berth-controller serve` on the same
/// data directory and the addresses it is listening on (gRPC, and the HTTP
/// API's and the metrics' when they are on); exits with [`TEMPFAIL`] when that is not
/// possible. Never returns.
pub fn start_afresh(
    listening: SocketAddr,
    http: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
) -> ! {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|command| command == "serve") {
        let mut args = pinned(args, "--listen", listening);
        if let Some(http) = http {
            args = pinned(args, "--http-listen", http);
        }
        if let Some(metrics) = metrics {
            args = pinned(args, "--metrics-listen", metrics);
        }
        let err = std::process::Command::new("/proc/self/exe")
            .args(args)
            .exec();
        tracing::error!(error = %err, "could not start afresh; exiting for the supervisor to start the controller again");
    } else {
        tracing::error!(
            "only `serve` starts afresh; exiting for the supervisor to start the controller again"
        );
    }
    std::process::exit(TEMPFAIL)
}

/// `args` with the address of `flag` replaced by the one actually bound (a
/// `--listen` with port 0 would pick another port, where agents would not
/// find it), or added when it was not given.
fn pinned(args: Vec<OsString>, flag: &str, listening: SocketAddr) -> Vec<OsString> {
    let address = OsString::from(listening.to_string());
    let prefix = format!("{flag}=");
    let mut pinned = Vec::with_capacity(args.len() + 2);
    let mut args = args.into_iter();
    let mut found = false;
    while let Some(arg) = args.next() {
        if arg == flag {
            args.next();
            found = true;
            pinned.push(arg);
            pinned.push(address.clone());
        } else if arg.to_string_lossy().starts_with(&prefix) {
            found = true;
            let mut replaced = OsString::from(&prefix);
            replaced.push(&address);
            pinned.push(replaced);
        } else {
            pinned.push(arg);
        }
    }
    if !found {
        pinned.push(flag.into());
        pinned.push(address);
    }
    pinned
}

#[cfg(test)]
mod tests {
    use super::pinned;

    fn args(list: &[&str]) -> Vec<std::ffi::OsString> {
        list.iter().map(Into::into).collect()
    }

    #[test]
    fn the_bound_address_replaces_or_joins_the_arguments() {
        let bound = "127.0.0.1:41234".parse().expect("address");
        assert_eq!(
            pinned(
                args(&["serve", "--listen", "127.0.0.1:0", "--data-dir", "d"]),
                "--listen",
                bound
            ),
            args(&["serve", "--listen", "127.0.0.1:41234", "--data-dir", "d"])
        );
        assert_eq!(
            pinned(args(&["serve", "--listen=0.0.0.0:0"]), "--listen", bound),
            args(&["serve", "--listen=127.0.0.1:41234"])
        );
        assert_eq!(
            pinned(args(&["serve", "--data-dir", "d"]), "--listen", bound),
            args(&["serve", "--data-dir", "d", "--listen", "127.0.0.1:41234"])
        );
        assert_eq!(
            pinned(
                args(&[
                    "serve",
                    "--listen",
                    "127.0.0.1:41234",
                    "--http-listen",
                    "127.0.0.1:0"
                ]),
                "--http-listen",
                "127.0.0.1:7080".parse().expect("address")
            ),
            args(&[
                "serve",
                "--listen",
                "127.0.0.1:41234",
                "--http-listen",
                "127.0.0.1:7080"
            ]),
            "the HTTP API's address is pinned the same way, leaving --listen alone"
        );
    }
}
