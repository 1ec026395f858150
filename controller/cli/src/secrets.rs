//! `berth secret set|ls|rm`: secrets for an app in one environment
//! (`APP/ENV`) or for the whole fleet (`--fleet`, admins). A value is read
//! from standard input or `--from-file`, never from the command line,
//! where the process list and the shell's history would keep it; it is
//! sent once and never printed.

use std::io::Read;
use std::path::{Path, PathBuf};

use berth_proto::v1::{ListSecretsRequest, RemoveSecretRequest, SetSecretRequest};
use berth_shared::exit;
use berth_shared::record::{MAX_SECRET_BYTES, SecretView};
use clap::Subcommand;

use super::output::{Column, ago, emit, grid};
use super::wire;
use super::{Failure, Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Set a secret, making its next version: `berth secret set web/prod
    /// DB_URL < file`. The value comes from standard input (read to its
    /// end, one trailing newline dropped) or --from-file, never from the
    /// command line; a deploy made after it uses it.
    Set {
        /// APP/ENV (like web/prod), then the secret's NAME; with --fleet,
        /// NAME alone.
        #[arg(value_name = "APP/ENV NAME", required = true)]
        args: Vec<String>,
        /// A fleet-wide secret (admins), for the manifests that name it.
        #[arg(long)]
        fleet: bool,
        /// Read the value from this file, byte for byte.
        #[arg(long, value_name = "PATH")]
        from_file: Option<PathBuf>,
    },
    /// List secrets: names, versions, who changed them when; never values.
    Ls {
        /// Only this app in this environment (APP/ENV).
        #[arg(value_name = "APP/ENV")]
        scope: Option<String>,
        /// Only the fleet-wide secrets.
        #[arg(long, conflicts_with = "scope")]
        fleet: bool,
    },
    /// Remove a secret and every version it kept: `berth secret rm web/prod
    /// DB_URL`, or `--fleet NAME`.
    Rm {
        #[arg(value_name = "APP/ENV NAME", required = true)]
        args: Vec<String>,
        #[arg(long)]
        fleet: bool,
    },
}

pub async fn run(session: &mut Session, command: SecretCommand) -> Outcome {
    match command {
        SecretCommand::Set {
            args,
            fleet,
            from_file,
        } => {
            let (scope, name) = scope_and_name(&args, fleet, "set")?;
            let value = match from_file {
                Some(path) => read_file(&path)?,
                None => read_stdin()?,
            };
            let request = SetSecretRequest { scope, name, value };
            let reply = session.client.set_secret(request).await?;
            let secret = wire::secret(reply.into_inner())?;
            emit(session.format, &secret, || {
                format!(
                    "secret {} set in {}: version {}",
                    secret.name, secret.scope, secret.version
                )
            });
        }
        SecretCommand::Ls { scope, fleet } => {
            let scope = if fleet { Some("*".into()) } else { scope };
            let request = ListSecretsRequest {
                scope: scope.unwrap_or_default(),
            };
            let reply = session.client.list_secrets(request).await?;
            let secrets = wire::secrets(reply.into_inner())?;
            emit(session.format, &secrets, || table(session, &secrets));
        }
        SecretCommand::Rm { args, fleet } => {
            let (scope, name) = scope_and_name(&args, fleet, "rm")?;
            let request = RemoveSecretRequest { scope, name };
            let reply = session.client.remove_secret(request).await?;
            let secret = wire::secret(reply.into_inner())?;
            emit(session.format, &secret, || {
                format!(
                    "secret {} removed from {} (with its versions up to {})",
                    secret.name, secret.scope, secret.version
                )
            });
        }
    }
    Ok(exit::OK)
}

/// The scope (`APP/ENV`, or `*` with `--fleet`) and the name the
/// arguments give. Anything more is refused without being repeated: it
/// may be a value typed where it must not be.
fn scope_and_name(args: &[String], fleet: bool, verb: &str) -> Result<(String, String), Failure> {
    match (fleet, args) {
        (true, [name]) => Ok(("*".into(), name.clone())),
        (false, [scope, name]) => Ok((scope.clone(), name.clone())),
        (false, [_]) => Err(Failure::usage(format!(
            "give APP/ENV and NAME (`berth secret {verb} web/prod DB_URL`), or --fleet NAME"
        ))),
        _ if verb == "set" => Err(Failure::usage(
            "too many arguments: a secret's value never goes on the command line (the process list and the shell's history keep it); pipe it in (`berth secret set web/prod DB_URL < file`) or use --from-file",
        )),
        _ => Err(Failure::usage(format!(
            "give APP/ENV and NAME (`berth secret {verb} web/prod DB_URL`), or --fleet NAME"
        ))),
    }
}

/// The value on standard input: read to its end, one trailing newline
/// dropped (what `echo` and most editors add).
fn read_stdin() -> Result<String, Failure> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(Failure::usage(
            "standard input is a terminal, which would show the value as you type it; pipe it in (`berth secret set web/prod DB_URL < file`) or use --from-file",
        ));
    }
    let bytes = read_bounded(std::io::stdin(), "standard input")?;
    let mut value = text(bytes, "standard input")?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    checked(value, "standard input")
}

/// The value in `path`, byte for byte.
fn read_file(path: &Path) -> Result<String, Failure> {
    let what = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|err| Failure::usage(format!("--from-file: cannot open {what}: {err}")))?;
    let value = text(read_bounded(file, &what)?, &what)?;
    checked(value, &what)
}

/// At most one byte more than a secret may hold, so a larger one is seen.
fn read_bounded(source: impl Read, what: &str) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    source
        .take(MAX_SECRET_BYTES as u64 + 3)
        .read_to_end(&mut bytes)
        .map_err(|err| Failure::usage(format!("read the value from {what}: {err}")))?;
    Ok(bytes)
}

fn text(bytes: Vec<u8>, what: &str) -> Result<String, Failure> {
    String::from_utf8(bytes)
        .map_err(|_| Failure::usage(format!("the value from {what} is not UTF-8 text")))
}

/// Refuses an empty or oversized value here, before it travels.
fn checked(value: String, what: &str) -> Result<String, Failure> {
    if value.is_empty() {
        return Err(Failure::usage(format!(
            "the value from {what} is empty; pipe the value in (`berth secret set web/prod DB_URL < file`) or use --from-file (`berth secret rm` removes a secret)"
        )));
    }
    if value.len() > MAX_SECRET_BYTES {
        return Err(Failure::usage(format!(
            "the value from {what} is larger than a secret holds ({MAX_SECRET_BYTES} bytes)"
        )));
    }
    Ok(value)
}

fn table(session: &Session, secrets: &[SecretView]) -> String {
    if secrets.is_empty() {
        return "no secrets: set one with `berth secret set APP/ENV NAME < file`".into();
    }
    let mut rows = grid(
        session.format,
        &[
            Column::Text("SCOPE"),
            Column::Text("NAME"),
            Column::Text("VERSION"),
            Column::Text("UPDATED"),
            Column::Text("BY"),
            Column::Wide("CREATED"),
            Column::Wide("CREATED BY"),
        ],
    );
    for secret in secrets {
        rows.row(vec![
            secret.scope.to_string(),
            secret.name.clone(),
            secret.version.to_string(),
            ago(secret.updated_at),
            secret.updated_by.clone(),
            secret.created_at.to_string(),
            secret.created_by.clone(),
        ]);
    }
    rows.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_give_a_scope_and_a_name_and_never_echo_a_value() {
        let args = |list: &[&str]| list.iter().map(|arg| arg.to_string()).collect::<Vec<_>>();
        assert_eq!(
            scope_and_name(&args(&["web/prod", "DB_URL"]), false, "set").expect("two"),
            ("web/prod".into(), "DB_URL".into())
        );
        assert_eq!(
            scope_and_name(&args(&["TOKEN"]), true, "rm").expect("fleet"),
            ("*".into(), "TOKEN".into())
        );
        let refused = scope_and_name(&args(&["web/prod", "DB_URL", "hunter2"]), false, "set")
            .expect_err("a value as an argument");
        assert!(refused.message.contains("never goes on the command line"));
        assert!(!refused.message.contains("hunter2"), "{}", refused.message);
        assert!(scope_and_name(&args(&["DB_URL"]), false, "rm").is_err());
        assert!(scope_and_name(&args(&["web/prod", "X"]), true, "rm").is_err());
    }

    #[test]
    fn values_are_bounded_text_and_never_empty() {
        assert_eq!(checked("x".into(), "stdin").expect("one byte"), "x");
        assert!(checked(String::new(), "stdin").is_err());
        let big = "x".repeat(MAX_SECRET_BYTES + 1);
        let refused = checked(big, "stdin").expect_err("too big");
        assert!(refused.message.contains("65536"), "{}", refused.message);
        assert!(text(vec![0xff, 0xfe], "stdin").is_err());
        let read = read_bounded(&b"abc"[..], "stdin").expect("read");
        assert_eq!(read, b"abc");
    }
}
