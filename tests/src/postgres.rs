//! The PostgreSQL store under test. `BERTH_TEST_POSTGRES` names a server
//! (`scripts/test.sh` starts a private one); with `BERTH_TEST_STORE=postgres`
//! (the suite's second pass) every controller the tests start keeps its
//! store there, each in a schema of its own, so the same scenarios run on
//! both stores.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A server a program chose for every controller it starts
/// ([`use_for_every_controller`]), over the environment's.
static CHOSEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every controller this process starts keep its store on `server`.
pub fn use_for_every_controller(server: &str) {
    let _ = CHOSEN.set(server.to_owned());
}

/// The server the tests' controllers use, if any.
pub fn server() -> Option<String> {
    if let Some(chosen) = CHOSEN.get() {
        return Some(chosen.clone());
    }
    std::env::var("BERTH_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
}

/// True when this run's controllers keep their stores in PostgreSQL.
pub fn in_use() -> bool {
    CHOSEN.get().is_some() || std::env::var("BERTH_TEST_STORE").as_deref() == Ok("postgres")
}

/// A new, empty schema on the server, as a `--store` address whose
/// connections use it; `None` when the tests run on sled.
pub fn fresh_store() -> Option<String> {
    if !in_use() {
        return None;
    }
    let server = server().expect(
        "BERTH_TEST_STORE=postgres needs BERTH_TEST_POSTGRES to name a server (scripts/test.sh starts one)",
    );
    Some(fresh_schema(&server))
}

/// A new, empty schema on `server`, as an address whose connections use it.
pub fn fresh_schema(server: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let schema = format!(
        "t{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default()
    );
    if let Err(err) = psql(server, &format!("CREATE SCHEMA {schema}")) {
        panic!("create the schema {schema} on {server}: {err}");
    }
    let joiner = if server.contains('?') { '&' } else { '?' };
    format!("{server}{joiner}options=-c%20search_path%3D{schema}")
}

/// True (and says so) when a test about the sled store's own files runs in
/// the PostgreSQL pass, where the store has no files to fill or corrupt:
/// the test returns without running.
pub fn not_for_postgres(test: &str, why: &str) -> bool {
    if in_use() {
        eprintln!("{test}: runs on sled only: {why}");
    }
    in_use()
}

/// A private PostgreSQL server (Debian's `postgresql`) in a temporary
/// directory, on a free port of 127.0.0.1 and a Unix socket there, run as
/// the `postgres` user when this process is root; stopped when dropped.
/// For programs (`berth-bench --store postgres`) that have no
/// `BERTH_TEST_POSTGRES` from scripts/test.sh.
pub struct Server {
    dir: tempfile::TempDir,
    pg_ctl: std::path::PathBuf,
    user: Option<&'static str>,
    /// A superuser's address through the socket.
    pub url: String,
}

impl Server {
    pub fn start() -> anyhow::Result<Server> {
        use anyhow::Context as _;
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL is not installed (apt-get install postgresql)")?
            .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .context("no initdb under /usr/lib/postgresql (apt-get install postgresql)")?;
        let dir = tempfile::Builder::new()
            .prefix("berth-postgres-")
            .tempdir()
            .context("tempdir")?;
        let root = crate::chroot::is_root();
        let user = root.then_some("postgres");
        if root {
            let status = Command::new("chown")
                .args(["postgres"])
                .arg(dir.path())
                .status()?;
            anyhow::ensure!(
                status.success(),
                "chown {} to postgres",
                dir.path().display()
            );
        }
        let run = |program: &std::path::Path| -> Command {
            match user {
                Some(user) => {
                    let mut command = Command::new("runuser");
                    command.args(["-u", user, "--"]).arg(program);
                    command
                }
                None => Command::new(program),
            }
        };
        let data = dir.path().join("data");
        let initdb = run(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()?;
        anyhow::ensure!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let pg_ctl = bin.join("pg_ctl");
        let started = run(&pg_ctl)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=1000",
                dir.path().display()
            ))
            .arg("start")
            .output()?;
        anyhow::ensure!(
            started.status.success(),
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        );
        let socket_dir = dir.path().display().to_string().replace('/', "%2F");
        Ok(Server {
            url: format!("postgres://postgres@{socket_dir}:{port}/postgres?sslmode=disable"),
            pg_ctl,
            user,
            dir,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut command = match self.user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&self.pg_ctl);
                command
            }
            None => Command::new(&self.pg_ctl),
        };
        let _ = command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "stop"])
            .output();
    }
}

/// The bytes the log table of the PostgreSQL store of `data` takes on
/// disk, with its index and TOAST; `None` for a sled directory.
pub fn stored_log_bytes(data: &std::path::Path) -> Option<u64> {
    let url = recorded_url(data)?;
    psql(&url, "SELECT pg_total_relation_size('kv_log_chunks')")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Runs one SQL command with `psql` on `url`; its unaligned, tuples-only
/// output, or why it failed.
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .map_err(|err| format!("run psql (apt-get install postgresql-client): {err}"))?;
    if !output.status.success() {
        return Err(format!("psql: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Ends the PostgreSQL session holding the `serving` lock of the store the
/// data directory `data` records (as a database restart or a cut link
/// would); true when there was one.
pub fn end_serving_session(data: &std::path::Path) -> bool {
    use sha2::{Digest, Sha256};
    let Some(url) = recorded_url(data) else {
        return false;
    };
    let Ok(schema) = psql(&url, "SELECT current_schema()") else {
        return false;
    };
    // The lock's id as `kv::pg::Pool::lock_id` makes it.
    let mut hash = Sha256::new();
    hash.update(schema.trim().as_bytes());
    hash.update([0]);
    hash.update(b"serving");
    hash.update([0]);
    let digest = hash.finalize();
    let id = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    // A bigint advisory lock shows as classid (high half), objid (low half).
    let (high, low) = ((id as u64) >> 32, (id as u64) & 0xffff_ffff);
    psql(
        &url,
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = {high} AND objid = {low} AND objsubid = 1"
        ),
    )
    .is_ok_and(|count| count.trim() == "1")
}

/// The address `store.toml` of the data directory `data` records.
fn recorded_url(data: &std::path::Path) -> Option<String> {
    let record = std::fs::read_to_string(data.join("store.toml")).ok()?;
    record
        .lines()
        .find_map(|line| line.strip_prefix("postgres = "))
        .map(|quoted| quoted.trim().trim_matches('"').to_owned())
}

/// Every key and value of the PostgreSQL store the data directory `data`
/// names in its `store.toml`, as raw bytes (to check what reached the
/// database the way a test walks a sled store's files); `None` for a
/// sled directory.
pub fn store_bytes(data: &std::path::Path) -> Option<Vec<u8>> {
    let url = recorded_url(data)?;
    let psql = |sql: &str| psql(&url, sql).unwrap_or_else(|err| panic!("{err}"));
    let tables = psql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name LIKE 'kv\\_%'",
    );
    let mut bytes = Vec::new();
    for table in tables.lines().filter(|line| !line.is_empty()) {
        let rows = psql(&format!(
            "SELECT encode(k, 'hex') || encode(v, 'hex') FROM {table}"
        ));
        for row in rows.lines() {
            bytes.extend(hex::decode(row.trim()).expect("hex from psql"));
        }
    }
    Some(bytes)
}
