//! The checks of `[target]`, `[setup]` and `[stop]`: where a deployment
//! runs and the scripts it runs there. (`[build]`, `[container]`,
//! `[health]` and `[proxy]` have files of their own.)

use toml::Value;

use super::{
    Checker, DEFAULT_SCRIPT_TIMEOUT, MAX_COMMAND_BYTES, MAX_COMMANDS, OnFailure, Script, Target,
    join,
};
use crate::labels::check_label_part;

impl Checker {
    pub(super) fn target(&mut self, value: Option<&Value>) -> Target {
        let mut target = Target::default();
        let Some(table) = value.and_then(|value| self.table("target", value)) else {
            if value.is_none() {
                self.error(
                    "target",
                    "is required; add [target] with labels = { role = \"web\" } or hosts = [\"name\"]",
                );
            }
            return target;
        };
        self.unknown_keys(
            "target",
            table,
            &[
                "labels",
                "hosts",
                "max_parallel",
                "max_failures",
                "on_failure",
            ],
        );
        if let Some(labels) = table.get("labels") {
            target.labels = self.labels("target.labels", labels);
        }
        if let Some(hosts) = table.get("hosts") {
            target.hosts = self.strings("target.hosts", hosts, |host| {
                check_label_part(host, false).map_err(|err| format!("host name {err}"))
            });
        }
        if target.labels.is_empty()
            && target.hosts.is_empty()
            && !table.contains_key("labels")
            && !table.contains_key("hosts")
        {
            self.error(
                "target",
                "names no hosts; add labels = { role = \"web\" } or hosts = [\"name\"]",
            );
        }
        target.max_parallel = table
            .get("max_parallel")
            .and_then(|value| self.count("target.max_parallel", value, 1));
        target.max_failures = table
            .get("max_failures")
            .and_then(|value| self.count("target.max_failures", value, 0))
            .unwrap_or(0);
        if let Some(value) = table.get("on_failure")
            && let Some(text) = self.string("target.on_failure", value)
        {
            match text {
                "rollback" => target.on_failure = OnFailure::Rollback,
                "stop" => target.on_failure = OnFailure::Stop,
                "leave" => target.on_failure = OnFailure::Leave,
                _ => self.error(
                    "target.on_failure",
                    format!("is `{text}`; use \"rollback\" (hosts already switched go back to the previous version), \"stop\" (they stop the new one) or \"leave\" (they keep it)"),
                ),
            }
        }
        target
    }

    pub(super) fn script(&mut self, path: &str, value: &Value) -> Option<Script> {
        let table = self.table(path, value)?;
        self.unknown_keys(path, table, &["run", "timeout"]);
        let run_path = join(path, "run");
        let run = match table.get("run") {
            Some(value) => self.strings(&run_path, value, check_command),
            None => {
                self.error(
                    &run_path,
                    "is required; list the commands, e.g. run = [\"./install.sh\"]",
                );
                Vec::new()
            }
        };
        if table
            .get("run")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            self.error(
                &run_path,
                "is empty; list at least one command or remove the section",
            );
        }
        if run.len() > MAX_COMMANDS {
            self.error(
                &run_path,
                format!("has {} commands; the limit is {MAX_COMMANDS}", run.len()),
            );
        }
        let timeout = match table.get("timeout") {
            None => DEFAULT_SCRIPT_TIMEOUT,
            Some(value) => self.timeout(&join(path, "timeout"), value)?,
        };
        Some(Script { run, timeout })
    }
}

pub(super) fn check_command(command: &str) -> Result<(), String> {
    if command.trim().is_empty() {
        return Err("is an empty command".into());
    }
    if command.len() > MAX_COMMAND_BYTES {
        return Err(format!("is longer than {MAX_COMMAND_BYTES} bytes"));
    }
    if command.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    Ok(())
}
