//! The commands that move a store: `migrate` (sled into PostgreSQL),
//! `backup` and `restore` (either store to one file and back).

use std::path::PathBuf;

use berth_controller::store_choice::StoreArgs;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Move this data directory's sled store into an empty PostgreSQL
    /// database, check every count, and make the directory use it. Stop
    /// the controller first; the sled store is left as it was.
    Migrate {
        /// The data directory whose store moves.
        #[arg(long, default_value = "/var/lib/berth-controller")]
        from: PathBuf,
        /// The database: postgres://USER@HOST:PORT/DATABASE.
        #[arg(long)]
        to: String,
        /// A file holding the PostgreSQL password (mode 0600).
        #[arg(long, env = "BERTH_STORE_PASSWORD_FILE")]
        store_password_file: Option<PathBuf>,
        /// The PEM certificate of the CA of PostgreSQL's server certificate.
        #[arg(long, env = "BERTH_STORE_CA")]
        store_ca: Option<PathBuf>,
    },
    /// Write the store (sled or PostgreSQL) to one file, as of one instant:
    /// a PostgreSQL store while controllers serve, a sled store with its
    /// controller stopped. Keep pki/ and keys/ with it.
    Backup {
        #[arg(long, default_value = "/var/lib/berth-controller")]
        data_dir: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// The backup file to write (mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a backup into an empty store: a data directory holding only
    /// pki/ and keys/ (sled), or with --store an empty database.
    Restore {
        #[arg(long, default_value = "/var/lib/berth-controller")]
        data_dir: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// The backup file to read.
        #[arg(long)]
        from: PathBuf,
    },
}

pub async fn run(command: StoreCommand) -> anyhow::Result<()> {
    match command {
        StoreCommand::Migrate {
            from,
            to,
            store_password_file,
            store_ca,
        } => {
            let target = StoreArgs {
                url: Some(to),
                password_file: store_password_file,
                ca: store_ca,
            };
            let copied = berth_controller::migrate::migrate(&from, &target, |tree, entries| {
                tracing::debug!(tree, entries, "copied");
            })
            .await?;
            print!("{}", berth_controller::migrate::report(&from, &copied));
            Ok(())
        }
        StoreCommand::Backup {
            data_dir,
            store,
            out,
        } => {
            let written = berth_controller::backup::backup(&data_dir, &store, &out)?;
            print!(
                "{}",
                berth_controller::backup::report("wrote", &out, &written)
            );
            Ok(())
        }
        StoreCommand::Restore {
            data_dir,
            store,
            from,
        } => {
            let restored = berth_controller::backup::restore(&data_dir, &store, &from)?;
            print!(
                "{}",
                berth_controller::backup::report("restored", &from, &restored)
            );
            Ok(())
        }
    }
}
