//! Host facts from sysinfo: OS, kernel, CPUs, memory, the disk that holds
//! the agent's data directory, uptime and load.

use std::path::Path;

use berth_proto::v1::HostFacts;
use sysinfo::{Disks, System};

/// A fresh snapshot. Blocking (reads /proc); call it from `spawn_blocking`.
pub fn snapshot(data_dir: &Path) -> HostFacts {
    let mut system = System::new().ok();
    if let Some(system) = system.as_mut() {
        system.refresh_memory();
    }
    let (disk_total_bytes, disk_free_bytes) = disk_of(data_dir);
    HostFacts {
        hostname: System::host_name().unwrap_or_default(),
        os: System::name().unwrap_or_default(),
        os_family: std::env::consts::OS.to_string(),
        os_version: System::os_version().unwrap_or_default(),
        kernel: System::kernel_version().unwrap_or_default(),
        arch: System::cpu_arch(),
        cpus: std::thread::available_parallelism()
            .map_or(0, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
        memory_total_bytes: system.as_ref().map_or(0, System::total_memory),
        memory_used_bytes: system.as_ref().map_or(0, System::used_memory),
        disk_total_bytes,
        disk_free_bytes,
        uptime_secs: System::uptime().unwrap_or_default(),
        load_1m: System::load_average().map_or(0.0, |load| load.one as f32),
        ..HostFacts::default()
    }
}

/// A snapshot with Docker's version (or why it cannot be reached).
pub async fn collect(data_dir: &Path, docker_host: &str) -> HostFacts {
    let dir = data_dir.to_path_buf();
    let mut facts = tokio::task::spawn_blocking(move || snapshot(&dir))
        .await
        .unwrap_or_default();
    match crate::stage::docker::probe(docker_host).await {
        Ok(version) => facts.docker_version = version,
        Err(error) => facts.docker_error = error,
    }
    facts
}

/// Total and free bytes of the filesystem holding `path`.
fn disk_of(path: &Path) -> (u64, u64) {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Ok(disks) = Disks::new_with_refreshed_list() else {
        return (0, 0);
    };
    disks
        .iter()
        .filter(|disk| path.starts_with(disk.mount_point()))
        .max_by_key(|disk| disk.mount_point().as_os_str().len())
        .map_or((0, 0), |disk| (disk.total_space(), disk.available_space()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn snapshot_reads_this_host() {
        let facts = super::snapshot(std::path::Path::new("/"));
        assert!(facts.cpus >= 1);
        assert!(facts.memory_total_bytes > 0);
        assert!(!facts.kernel.is_empty());
        assert!(facts.disk_total_bytes > 0);
    }
}
