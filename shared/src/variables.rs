//! The rules every variable follows, wherever it is set: the manifest's
//! `[env]` and `[container] env`, an environment's `--var`, a secret's
//! name. A name is what a shell and Docker accept (`[A-Za-z_][A-Za-z0-9_]*`);
//! `BERTH_` names are berth's own (`BERTH_APP`, `BERTH_HOST_PORT`, ...).

/// Longest variable name.
pub const MAX_NAME: usize = 128;
/// Largest value, in bytes.
pub const MAX_VALUE: usize = 32 * 1024;
/// Most variables one place may set.
pub const MAX_COUNT: usize = 200;

/// Refuses a name a shell or Docker would not take, or one of berth's.
pub fn check_name(name: &str) -> Result<(), String> {
    let shaped = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !shaped {
        return Err(format!(
            "`{}` is not a variable name; use letters, digits and `_`, not starting with a digit",
            crate::text::clip(name, 60)
        ));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "`{}` is longer than {MAX_NAME} characters",
            crate::text::clip(name, 60)
        ));
    }
    if name.starts_with("BERTH_") {
        return Err(format!(
            "`{name}` starts with BERTH_, which names berth's own variables; choose another name"
        ));
    }
    Ok(())
}

/// Refuses a value no process environment can hold, or a huge one.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err("contains a NUL byte, which no environment can hold".into());
    }
    if value.len() > MAX_VALUE {
        return Err(format!(
            "is {} bytes; a variable holds at most {MAX_VALUE}",
            value.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shell_names_and_not_berths() {
        for good in ["A", "_x", "DATABASE_URL", "a1"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "BERTH_APP", "é"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name(&"A".repeat(MAX_NAME + 1)).is_err());
        assert!(check_value("a\0b").is_err());
        assert!(check_value(&"x".repeat(MAX_VALUE + 1)).is_err());
        assert_eq!(check_value("postgres://db:5432"), Ok(()));
    }
}
