//! `berth`: the command line for operators. Everything lives in
//! `berth_cli`; this only sets up and exits with its code.

use clap::Parser;

/// The text std's `print!` family panics with when a write fails; the
/// io error follows it, ending `(os error N)`.
const PRINT_FAILED: &str = "failed printing to std";
/// `EPIPE` on Linux: the reading end of the pipe is gone.
const BROKEN_PIPE: &str = "(os error 32)";

/// A closed output (`berth ls -o json | head -c 10`, or a pipe into a
/// command that does not exist) ends the command quietly with success, as
/// `berth logs` does: Rust ignores SIGPIPE, so `println!` panics on
/// `EPIPE`, and this hook turns exactly that panic into a silent exit.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with(PRINT_FAILED) && message.ends_with(BROKEN_PIPE) {
            std::process::exit(berth_shared::exit::OK);
        }
        default(info);
    }));
}

fn main() {
    exit_quietly_on_broken_pipe();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = berth_cli::Args::parse();
    let code = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(berth_cli::run(args)),
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            berth_shared::exit::FAILED
        }
    };
    std::process::exit(code);
}
