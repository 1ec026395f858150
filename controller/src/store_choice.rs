//! Which store a controller opens: sled in its data directory (the
//! default), or a PostgreSQL database that several controllers share.
//!
//! `init --store postgres://...` records the choice in `DATA_DIR/store.toml`
//! (mode 0600, never a password), so `serve`, `rotate-key` and `dev` on
//! that directory open the same database without being told again; a
//! `--store` that names another database than the recorded one is refused.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::paths::DataDir;
use crate::store::Store;
use crate::store::kv::pg::Settings;

/// The store flags every command that opens the store takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct StoreArgs {
    /// Keep the store in PostgreSQL instead of sled in the data directory:
    /// postgres://USER@HOST:PORT/DATABASE[?sslmode=require] (several hosts
    /// as HOST1:PORT,HOST2:PORT with target_session_attrs=read-write).
    /// `init` records it in DATA_DIR/store.toml for the other commands.
    #[arg(long = "store", env = "BERTH_STORE", value_name = "URL")]
    pub url: Option<String>,
    /// A file holding the PostgreSQL password (mode 0600).
    #[arg(long = "store-password-file", env = "BERTH_STORE_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// The PEM certificate of the CA that signed PostgreSQL's server
    /// certificate, when it is not one of the system's.
    #[arg(long = "store-ca", env = "BERTH_STORE_CA")]
    pub ca: Option<PathBuf>,
}

/// What `store.toml` holds.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct Recorded {
    postgres: String,
    password_file: Option<PathBuf>,
    ca: Option<PathBuf>,
}

/// Records a PostgreSQL choice in a new data directory (nothing for sled).
pub fn record(dir: &DataDir, args: &StoreArgs) -> Result<()> {
    let Some(url) = &args.url else {
        return Ok(());
    };
    // Read only the address here: `init` opens the store next, which
    // reads the files.
    if settings(url, None, None)?.has_password_in_url() {
        bail!(
            "the --store address carries a password, which would be written into {}; put the password in a file of mode 0600 and give it with --store-password-file",
            dir.store_choice().display()
        );
    }
    let recorded = Recorded {
        postgres: url.clone(),
        password_file: args.password_file.as_deref().map(absolute).transpose()?,
        ca: args.ca.as_deref().map(absolute).transpose()?,
    };
    let text = toml::to_string(&recorded).context("write the store's record")?;
    berth_shared::credentials::write_secret(&dir.store_choice(), text.as_bytes())
        .map_err(anyhow::Error::msg)
}

/// Opens the store this data directory uses (see the module's note).
pub fn open(dir: &DataDir, args: &StoreArgs) -> Result<Store> {
    let recorded = read_record(dir)?;
    let chosen = match (&args.url, recorded) {
        (Some(url), Some(recorded)) if *url != recorded.postgres => bail!(
            "--store names {url}, but {} records the store {}; give that one, or none",
            dir.store_choice().display(),
            recorded.postgres
        ),
        (Some(url), _) => Some((url.clone(), args.password_file.clone(), args.ca.clone())),
        (None, Some(recorded)) => Some((
            recorded.postgres,
            args.password_file.clone().or(recorded.password_file),
            args.ca.clone().or(recorded.ca),
        )),
        (None, None) => None,
    };
    match chosen {
        None => Store::open(&dir.store()).with_context(|| {
            format!(
                "open the store in {} (is another controller using it?)",
                dir.store().display()
            )
        }),
        Some((url, password_file, ca)) => open_postgres(
            &url,
            &StoreArgs {
                url: None,
                password_file,
                ca,
            },
        ),
    }
}

/// Opens the PostgreSQL store at `url` with the password and CA files of
/// `args`.
pub fn open_postgres(url: &str, args: &StoreArgs) -> Result<Store> {
    let settings = settings(url, args.password_file.as_deref(), args.ca.as_deref())?;
    Store::open_postgres(settings).context("open the PostgreSQL store")
}

fn settings(url: &str, password_file: Option<&Path>, ca: Option<&Path>) -> Result<Settings> {
    Settings::new(url, password_file, ca).map_err(anyhow::Error::new)
}

fn read_record(dir: &DataDir) -> Result<Option<Recorded>> {
    let path = dir.store_choice();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("read {}", path.display())),
    };
    toml::from_str(&text).map(Some).with_context(|| {
        format!(
            "{} is not a store record; write it as postgres = \"postgres://...\"",
            path.display()
        )
    })
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolve {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_choice_is_read_back_and_a_password_is_never_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path());
        let args = StoreArgs {
            url: Some("postgres://berth@db.example:5432/berth".into()),
            password_file: Some(dir.path().join("pw")),
            ca: None,
        };
        record(&data, &args).expect("record");
        let recorded = read_record(&data).expect("read").expect("recorded");
        assert_eq!(recorded.postgres, "postgres://berth@db.example:5432/berth");
        assert_eq!(recorded.password_file, Some(dir.path().join("pw")));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.store_choice())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let other = StoreArgs {
            url: Some("postgres://berth@elsewhere/berth".into()),
            ..StoreArgs::default()
        };
        let refused = open(&data, &other).err().expect("refused");
        assert!(
            refused.to_string().contains("records the store"),
            "{refused}"
        );

        let fresh = tempfile::tempdir().expect("tempdir");
        let with_password = StoreArgs {
            url: Some("postgres://berth:hunter2@db.example/berth".into()),
            ..StoreArgs::default()
        };
        let refused = record(&DataDir::new(fresh.path()), &with_password).expect_err("refused");
        assert!(
            refused.to_string().contains("--store-password-file"),
            "{refused}"
        );
        assert!(!DataDir::new(fresh.path()).store_choice().exists());
    }
}
