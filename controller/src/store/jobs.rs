//! Fleet jobs (`berth exec` runs and their output), keyed by ULID so they
//! read in time order; and build results (`builds`), keyed by the hash of
//! a build's inputs, for reuse.

use berth_shared::record::{BuildOutput, FleetJob};

use super::{Store, StoreError, Thing, decode, encode};

impl Store {
    /// Records a finished fleet job (made durable by the caller's flush).
    pub fn put_job(&self, job: &FleetJob) -> Result<(), StoreError> {
        let id: ulid::Ulid = job
            .id
            .parse()
            .map_err(|_| StoreError::Refused(format!("fleet job id `{}` is not a ULID", job.id)))?;
        self.t()?.jobs.insert(id.to_bytes(), encode(job))?;
        Ok(())
    }

    /// One fleet job.
    pub fn get_job(&self, id: &str) -> Result<FleetJob, StoreError> {
        let key: ulid::Ulid = id
            .parse()
            .map_err(|_| StoreError::NotFound(Thing::Job, format!("fleet job {id}")))?;
        let bytes = self
            .t()?
            .jobs
            .get(key.to_bytes())?
            .ok_or_else(|| StoreError::NotFound(Thing::Job, format!("fleet job {id}")))?;
        decode("jobs", &bytes)
    }

    /// The newest `limit` fleet jobs, newest first.
    pub fn list_jobs(&self, limit: usize) -> Result<Vec<FleetJob>, StoreError> {
        self.t()?
            .jobs
            .iter()
            .rev()
            .take(limit)
            .map(|entry| decode("jobs", &entry?.1))
            .collect()
    }
}

impl Store {
    /// The result of an earlier build with these inputs.
    pub fn get_build(&self, key: &str) -> Result<Option<BuildOutput>, StoreError> {
        self.t()?
            .builds
            .get(key.as_bytes())?
            .map(|bytes| decode("builds", &bytes))
            .transpose()
    }

    /// Keeps a build's result for later deployments with the same inputs.
    pub fn put_build(&self, key: &str, built: &BuildOutput) -> Result<(), StoreError> {
        self.t()?.builds.insert(key.as_bytes(), encode(built))?;
        Ok(())
    }

    /// Forgets build results stored in `digest` (its blob is gone).
    pub fn forget_builds_of(&self, digest: &str) -> Result<(), StoreError> {
        for entry in self.t()?.builds.iter() {
            let (key, value) = entry?;
            let built: BuildOutput = decode("builds", &value)?;
            if built.digest == digest {
                self.t()?.builds.remove(key)?;
            }
        }
        Ok(())
    }

    /// Lets `agent` download blob `digest` (a build's result for a host).
    pub fn grant_blob(
        &self,
        agent: berth_shared::id::AgentId,
        digest: &str,
    ) -> Result<(), StoreError> {
        let mut key = agent.to_bytes().to_vec();
        key.extend_from_slice(digest.as_bytes());
        self.t()?.blob_grants.insert(key, &[])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use berth_shared::record::{HostRun, Timestamp};

    use super::*;

    #[test]
    fn jobs_round_trip_and_unknown_ids_are_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let job = FleetJob {
            id: ulid::Ulid::new().to_string(),
            argv: vec!["uptime".into()],
            selector: "role=web".into(),
            triggered_by: "admin".into(),
            timeout_ms: 1000,
            started_at: Timestamp(1),
            finished_at: Timestamp(2),
            hosts: vec![HostRun {
                host: "web-1".into(),
                status: "ok".into(),
                exit_code: Some(0),
                output: vec!["up 3 days".into()],
                error: None,
                duration_ms: 5,
            }],
        };
        store.put_job(&job).expect("put");
        assert_eq!(store.get_job(&job.id).expect("get"), job);
        let mut newer = job.clone();
        let first: ulid::Ulid = job.id.parse().expect("ulid");
        newer.id = ulid::Ulid::from_parts(first.timestamp_ms() + 1, 0).to_string();
        store.put_job(&newer).expect("put");
        let listed: Vec<String> = store
            .list_jobs(10)
            .expect("list")
            .into_iter()
            .map(|job| job.id)
            .collect();
        assert_eq!(listed, [newer.id.clone(), job.id.clone()], "newest first");
        assert_eq!(store.list_jobs(1).expect("list").len(), 1);
        assert!(matches!(
            store.get_job(&ulid::Ulid::new().to_string()),
            Err(StoreError::NotFound(..))
        ));
        assert!(matches!(
            store.get_job("nope"),
            Err(StoreError::NotFound(..))
        ));
    }
}
