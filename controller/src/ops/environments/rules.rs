//! What an environment record may hold and who may change what, as pure
//! functions over the record: names as the manifest checks them,
//! variables as `berth_shared::variables` checks them (and at most
//! [`MAX_VARS_BYTES`] together), approvals of 1 or 2, a change applied with
//! the words the audit log keeps (variable names, never their values), and
//! the rule that only an admin loosens a protected environment.

use std::collections::BTreeMap;

use berth_shared::manifest::check_environment;
use berth_shared::text::clip;
use berth_shared::variables;

use super::EnvironmentChange;
use crate::ops::{Caller, Code, Error, Result};
use crate::store::{EnvironmentRecord, Role};

/// The most bytes an environment's variables (names and values) hold
/// together, so that a listing of environments stays far below a
/// message's bound.
pub const MAX_VARS_BYTES: usize = 64 * 1024;

/// Refuses an app or environment name the manifest would refuse.
pub(super) fn check_names(app: &str, name: &str) -> Result<()> {
    check_name("app", app)?;
    check_name("environment", name)
}

/// Refuses a name the manifest would refuse for `what` (it checks `app`
/// and `environment` with one rule, which `check_environment` exposes).
pub(super) fn check_name(what: &str, text: &str) -> Result<()> {
    check_environment(&clip(text, 80)).map_err(|err| Error::invalid(format!("{what} name {err}")))
}

/// Approvals as stored: 1 or 2.
/// A deploy window as stored: checked, trimmed; empty means none.
pub(super) fn checked_window(target: &str, text: Option<&str>) -> Result<Option<String>> {
    let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    crate::ops::windows::Window::parse(text)
        .map_err(|err| Error::invalid(format!("{target}'s window: {err}")))?;
    Ok(Some(text.to_string()))
}

pub(super) fn checked_approvals(approvals: u64) -> Result<u8> {
    match u8::try_from(approvals) {
        Ok(approvals @ 1..=2) => Ok(approvals),
        _ => Err(Error::invalid(format!(
            "approvals {approvals} is not a choice: a protected environment needs 1 approval (an admin's) or 2 (two operators', or an admin's); give 1 or 2"
        ))),
    }
}

/// Refuses a variable name a shell would not take, or one of berth's.
pub(super) fn check_var_name(target: &str, name: &str) -> Result<()> {
    variables::check_name(name).map_err(|err| Error::invalid(format!("{target}: {err}")))
}

/// Refuses variables a process could not be given, or too many of them.
/// A refusal names the variable, never its value.
pub(super) fn check_vars(target: &str, vars: &BTreeMap<String, String>) -> Result<()> {
    for (name, value) in vars {
        check_var_name(target, name)?;
        variables::check_value(value)
            .map_err(|err| Error::invalid(format!("{target}: the value of {name} {err}")))?;
    }
    if vars.len() > variables::MAX_COUNT {
        return Err(Error::invalid(format!(
            "{target} would have {} variables; an environment holds at most {}; unset some first",
            vars.len(),
            variables::MAX_COUNT
        )));
    }
    let bytes: usize = vars
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if bytes > MAX_VARS_BYTES {
        return Err(Error::invalid(format!(
            "{target}'s variables would hold {bytes} bytes; an environment's hold at most {MAX_VARS_BYTES} together; unset some or shorten them"
        )));
    }
    Ok(())
}

/// Refuses a change that names nothing, or sets and unsets one variable.
pub(super) fn check_change(target: &str, change: &EnvironmentChange) -> Result<()> {
    let EnvironmentChange {
        kind,
        is_default,
        protected,
        approvals,
        window,
        set_vars,
        unset_vars,
    } = change;
    let names_nothing = kind.is_none()
        && is_default.is_none()
        && protected.is_none()
        && approvals.is_none()
        && window.is_none()
        && set_vars.is_empty()
        && unset_vars.is_empty();
    if names_nothing {
        return Err(Error::invalid(format!(
            "the change of {target} names nothing to change; give a type, default, protected, approvals, a window, or variables to set or unset"
        )));
    }
    for name in unset_vars {
        check_var_name(target, name)?;
        if set_vars.contains_key(name) {
            return Err(Error::invalid(format!(
                "{target}: {name} is both set and unset; give it once"
            )));
        }
    }
    Ok(())
}

/// Applies `change` to the stored `record` for `caller`; returns what
/// changed, for the audit log, naming variables but never their values.
/// Loosening a protected environment (unprotecting it, or changing the
/// approvals it needs) is an admin's.
pub(super) fn apply(
    record: &mut EnvironmentRecord,
    change: &EnvironmentChange,
    caller: &Caller,
) -> Result<String> {
    let target = format!("{}/{}", record.app, record.name);
    let approvals = change.approvals.map(checked_approvals).transpose()?;
    let unprotects = record.protected && change.protected == Some(false);
    let reapproves = record.protected && approvals.is_some_and(|n| n != record.approvals);
    let window = match &change.window {
        Some(text) => Some(checked_window(&target, Some(text))?),
        None => None,
    };
    let rewindows = record.protected && window.as_ref().is_some_and(|w| *w != record.window);
    if unprotects || reapproves || rewindows {
        let what = if unprotects {
            "unprotecting"
        } else if reapproves {
            "changing the approvals of"
        } else {
            "changing the deploy window of"
        };
        require_admin(
            caller,
            &format!("{what} the protected environment {target}"),
        )?;
    }
    let mut changed = Vec::new();
    if let Some(kind) = change.kind.filter(|kind| *kind != record.kind) {
        changed.push(format!("type {} -> {kind}", record.kind));
        record.kind = kind;
    }
    if let Some(is_default) = change.is_default.filter(|flag| *flag != record.is_default) {
        changed.push(if is_default { "default" } else { "not default" }.into());
        record.is_default = is_default;
    }
    if let Some(protected) = change.protected.filter(|flag| *flag != record.protected) {
        changed.push(
            if protected {
                "protected"
            } else {
                "unprotected"
            }
            .into(),
        );
        record.protected = protected;
    }
    if let Some(approvals) = approvals.filter(|n| *n != record.approvals) {
        changed.push(format!("approvals {} -> {approvals}", record.approvals));
        record.approvals = approvals;
    }
    if let Some(window) = window.filter(|window| *window != record.window) {
        changed.push(match &window {
            Some(text) => format!("window {text}"),
            None => "no window".into(),
        });
        record.window = window;
    }
    let mut vars = record.vars.clone();
    let set: Vec<&str> = change
        .set_vars
        .iter()
        .filter(|(name, value)| vars.get(*name) != Some(*value))
        .map(|(name, _)| name.as_str())
        .collect();
    vars.extend(change.set_vars.clone());
    let unset: Vec<&str> = change
        .unset_vars
        .iter()
        .filter(|name| vars.remove(*name).is_some())
        .map(String::as_str)
        .collect();
    check_vars(&target, &vars)?;
    if !set.is_empty() {
        changed.push(format!("set {}", set.join(", ")));
    }
    if !unset.is_empty() {
        changed.push(format!("unset {}", unset.join(", ")));
    }
    record.vars = vars;
    Ok(if changed.is_empty() {
        "no change".into()
    } else {
        changed.join("; ")
    })
}

/// What a new environment is, for the audit log: its rules and the names
/// of its variables, never their values.
pub(super) fn created_outcome(record: &EnvironmentRecord) -> String {
    let mut parts = vec![format!("type {}", record.kind)];
    if record.is_default {
        parts.push("default".into());
    }
    if record.protected {
        parts.push(format!("protected, {} approvals", record.approvals));
    }
    if !record.vars.is_empty() {
        let names: Vec<&str> = record.vars.keys().map(String::as_str).collect();
        parts.push(format!("vars {}", names.join(", ")));
    }
    parts.join("; ")
}

/// Refuses `caller` unless it is an admin, saying why: `what` loosens a
/// protected environment, which an operator must not do to itself.
pub(super) fn require_admin(caller: &Caller, what: &str) -> Result<()> {
    if caller.principal.role >= Role::Admin {
        return Ok(());
    }
    Err(Error::new(
        Code::AuthPermissionDenied,
        format!(
            "{} has role {}; {what} needs an admin, so that an operator cannot lift the approvals its own deploys there wait for; ask an admin",
            caller.principal.name,
            caller.principal.role.as_str()
        ),
    ))
}
