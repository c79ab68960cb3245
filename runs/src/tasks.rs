//! MCP tasks' records, kept so a task's outcome survives the server (and a task the server
//! died in the middle of is found and closed). The MCP face owns their shape; the store keeps
//! them as JSON by task id.

use serde_json::Value;

use crate::error::{corrupt, encode};
use crate::{Result, RunsError, Store};

impl Store {
    /// Claim notice `key` at `now_ms`: true the first time only.
    pub fn claim_notice(&self, key: &str, now_ms: u64) -> Result<bool> {
        let claimed = self
            .inner
            .notices
            .compare_and_swap(
                key.as_bytes(),
                None as Option<&[u8]>,
                Some(&now_ms.to_be_bytes()),
            )?
            .is_ok();
        Ok(claimed)
    }

    /// Keep `record` as task `id`'s, replacing any earlier one.
    pub fn save_task(&self, id: &str, record: &Value) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(|e| encode("task", e))?;
        self.inner.tasks.insert(id.as_bytes(), bytes)?;
        self.inner.tasks.flush()?;
        Ok(())
    }

    /// Task `id`'s record.
    pub fn task(&self, id: &str) -> Result<Value> {
        let bytes = self
            .inner
            .tasks
            .get(id.as_bytes())?
            .ok_or_else(|| RunsError::NotFound {
                what: "task",
                id: id.to_owned(),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| corrupt("task", e))
    }

    /// Every task's id and record.
    pub fn tasks(&self) -> Result<Vec<(String, Value)>> {
        self.inner
            .tasks
            .iter()
            .map(|item| {
                let (key, bytes) = item?;
                let record = serde_json::from_slice(&bytes).map_err(|e| corrupt("task", e))?;
                Ok((String::from_utf8_lossy(&key).into_owned(), record))
            })
            .collect()
    }
}
