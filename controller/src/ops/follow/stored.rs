//! Reading a deployment's stored lines for a follower: all of them after
//! what was sent, merged across hosts in time order, or only the last few.

use std::collections::VecDeque;

use berth_shared::id::TaskId;
use berth_shared::record::Deployment;

use super::filter::is_failure;
use super::{Follower, LogLine, PAGE, Stopped, record};
use crate::store::{StoreError, StoredLine};

impl Follower {
    /// Sends stored lines after what was already sent, ordered by time
    /// across hosts (and by sequence within one host). Lines are read in
    /// pages and merged as they stream, so memory stays bounded however
    /// long the logs are.
    pub(super) async fn send_stored(&mut self, deployment: &Deployment) -> Result<(), Stopped> {
        let tasks: Vec<(TaskId, String)> = deployment
            .tasks
            .iter()
            .filter(|task| self.filter.wants_host(&task.host))
            .map(|task| (task.id, task.host.clone()))
            .collect();
        let mut buffers: Vec<VecDeque<(u64, StoredLine)>> = vec![VecDeque::new(); tasks.len()];
        let mut exhausted = vec![false; tasks.len()];
        loop {
            for (index, (task, _)) in tasks.iter().enumerate() {
                if buffers[index].is_empty() && !exhausted[index] {
                    let after = self.last.get(task).copied().unwrap_or(0);
                    let page: Result<Vec<_>, _> = self
                        .context
                        .store
                        .task_lines(self.id, *task, after)
                        .take(PAGE)
                        .collect();
                    let page = self.or_stop(page).await?;
                    exhausted[index] = page.len() < PAGE;
                    buffers[index].extend(page);
                }
            }
            let next = (0..tasks.len())
                .filter(|index| !buffers[*index].is_empty())
                .min_by_key(|index| (buffers[*index][0].1.ts_ms, *index));
            let Some(index) = next else { return Ok(()) };
            let Some((seq, line)) = buffers[index].pop_front() else {
                return Ok(());
            };
            let (task, host) = &tasks[index];
            self.last.insert(*task, seq);
            self.offer(deployment, *task, host, seq, line).await?;
        }
    }

    /// The last `tail` stored lines that pass the filters, across hosts, in
    /// time order. Each task is read newest first until it has given
    /// `tail` lines.
    pub(super) fn tail(
        &mut self,
        deployment: &Deployment,
        tail: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        let mut records = Vec::new();
        let context = self.context.clone();
        for task in &deployment.tasks {
            if !self.filter.wants_host(&task.host) {
                continue;
            }
            let mut kept = 0;
            for entry in context.store.task_lines_rev(self.id, task.id) {
                let (seq, line) = entry?;
                // The first line read is the task's newest.
                self.last.entry(task.id).or_insert(seq);
                match self
                    .filter
                    .wants(&task.host, &line, || is_failure(deployment, task.id, &line))
                {
                    Some(true) => {
                        records.push(record(task.id, &task.host, seq, line));
                        kept += 1;
                        if kept == tail {
                            break;
                        }
                    }
                    Some(false) => {}
                    None => self.hold(task.id, &task.host, seq, line),
                }
            }
        }
        records.sort_by(|a, b| (a.ts_ms, &a.task_id, a.seq).cmp(&(b.ts_ms, &b.task_id, b.seq)));
        if records.len() > tail {
            records.drain(..records.len() - tail);
        }
        Ok(records)
    }
}
