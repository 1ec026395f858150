//! The values `[container]` takes that Docker is strict about: image
//! references, volumes, and sizes.

use super::MIN_MEMORY;

/// Checks an image reference: `[host[:port]/]name[/name...][:tag][@sha256:hex]`
/// with lowercase names, as Docker requires.
pub fn check_image(image: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("`{image}` is not a valid image reference: {why}"));
    if image.is_empty() || image.len() > 512 {
        return refuse("it must be 1 to 512 characters");
    }
    let (name_and_tag, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return refuse("a digest must be sha256: followed by 64 hex digits");
        }
    }
    let last_slash = name_and_tag.rfind('/').map_or(0, |at| at + 1);
    let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
        Some(colon) => (
            &name_and_tag[..last_slash + colon],
            Some(&name_and_tag[last_slash + colon + 1..]),
        ),
        None => (name_and_tag, None),
    };
    if let Some(tag) = tag {
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return refuse("a tag is 1 to 128 letters, digits, `_`, `.` and `-`");
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first part with a dot, a colon or "localhost" is a registry host.
    if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        parts.remove(0);
    }
    for part in parts {
        let valid = !part.is_empty()
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid {
            return refuse(
                "repository names use lowercase letters, digits and single `.`, `_` or `-` between them",
            );
        }
    }
    Ok(())
}

/// The registry an image reference pulls from: its first path part when
/// that names a host (has a `.` or `:`, or is `localhost`), else Docker
/// Hub (`docker.io`).
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

pub(super) fn check_volume(volume: &str) -> Result<(), String> {
    let parts: Vec<&str> = volume.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [source, target] => (*source, *target, None),
        [source, target, mode] => (*source, *target, Some(*mode)),
        _ => {
            return Err(format!(
                "`{volume}` must look like /host/path:/container/path or name:/container/path[:ro]"
            ));
        }
    };
    let named = source.starts_with(|c: char| c.is_ascii_alphanumeric())
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !(source.starts_with('/') || named) {
        return Err(format!(
            "`{volume}`: the source must be an absolute host path or a volume name"
        ));
    }
    if !target.starts_with('/') {
        return Err(format!("`{volume}`: the container path must be absolute"));
    }
    if mode.is_some_and(|mode| mode != "ro" && mode != "rw") {
        return Err(format!("`{volume}`: the mode must be ro or rw"));
    }
    Ok(())
}

/// Parses a memory size such as `256m`, `1g`, `512MiB` or `1073741824`
/// (units are powers of 1024, as Docker reads them).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text)?;
    if bytes < MIN_MEMORY {
        return Err(format!("`{text}` is below Docker's minimum of 6m"));
    }
    Ok(bytes)
}

/// Parses a size such as `20g`, `512MiB` or `1073741824` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write it like 256m or 1g"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("`{text}` has an unknown unit; use k, m or g")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        for good in [
            "hello",
            "hello:1.4.2",
            "team/app:v1",
            "registry.example.com:5000/team/app:latest",
            "localhost/x",
            &format!("app@sha256:{}", "a".repeat(64)),
        ] {
            assert_eq!(check_image(good), Ok(()), "{good}");
        }
        for bad in [
            "Hello",
            "app:",
            "app:bad tag",
            "a//b",
            "-app",
            &format!("app@sha256:{}", "z".repeat(64)),
            "",
        ] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registries_of_images() {
        assert_eq!(registry_of("hello:1"), "docker.io");
        assert_eq!(registry_of("team/app"), "docker.io");
        assert_eq!(
            registry_of("registry.example.com/team/app:1"),
            "registry.example.com"
        );
        assert_eq!(registry_of("127.0.0.1:5000/app"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/app"), "localhost");
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("256m"), Ok(256 << 20));
        assert_eq!(parse_memory("1GiB"), Ok(1 << 30));
        assert!(parse_memory("1k").is_err(), "below the minimum");
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("5x").is_err());
    }

    #[test]
    fn volumes() {
        assert!(check_volume("/srv/data:/data").is_ok());
        assert!(check_volume("cache:/cache:ro").is_ok());
        assert!(check_volume("relative:/x:rw").is_ok());
        assert!(check_volume("./rel:/x").is_err());
        assert!(check_volume("/a:b").is_err());
        assert!(check_volume("/a:/b:rx").is_err());
    }
}
