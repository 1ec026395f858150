//! `berth`: the command line for operators. Everything lives in
//! `berth_controller::cli`; this only sets up and exits with its code.

use clap::Parser;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = berth_controller::cli::Args::parse();
    let code = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(berth_controller::cli::run(args)),
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            berth_shared::exit::FAILED
        }
    };
    std::process::exit(code);
}
