//! `tasks/index.json` across machines: a branch of the repository's remote, changed only by
//! commits pushed with a compare-and-swap on the branch.
//!
//! On one machine the index lives in the main checkout and changes under a `flock`
//! ([`crate::Repo::update`]). Workers on many machines share no file system, only the remote,
//! so there the index is the one file of the orphan branch [`BRANCH`]. An update fetches the
//! branch, applies the change to the index it holds, validates it, commits it on top and
//! pushes with `--force-with-lease=<branch>:<the commit it started from>`: git's own atomic
//! ref update on the remote. When another machine pushed first the lease fails, and the
//! update starts again from the new commit — so concurrent updates are serialised by the
//! remote and none is lost.

use std::path::{Path, PathBuf};

use crate::git::remote_git;
use crate::model::Index;
use crate::{Result, SopError};

/// The branch that holds the shared index.
pub const BRANCH: &str = "baton/coordination";
const REF: &str = "refs/heads/baton/coordination";
/// Attempts before an update gives up: each failed one means another machine's update went
/// in, so this many in a row means the branch is far busier than goals make it.
const ATTEMPTS: usize = 50;

/// The shared index of the repository at `remote`, worked on in a scratch repository of
/// this machine's.
#[derive(Debug)]
pub struct Coordination {
    remote: String,
    scratch: PathBuf,
    /// One update at a time through the scratch repository's index file.
    busy: tokio::sync::Mutex<()>,
}

impl Coordination {
    /// The coordination branch of `remote` (a URL or path git can push to), using `scratch`
    /// (created if missing) for git's objects.
    pub async fn open(remote: &str, scratch: &Path) -> Result<Coordination> {
        std::fs::create_dir_all(scratch).map_err(|source| SopError::Io {
            path: scratch.to_owned(),
            source,
        })?;
        remote_git(scratch, &["init", "--quiet"], &[]).await?;
        Ok(Coordination {
            remote: remote.to_owned(),
            scratch: scratch.to_owned(),
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// The branch's commit now, fetched; `None` before the first update.
    async fn fetch(&self) -> Result<Option<String>> {
        let listed = remote_git(&self.scratch, &["ls-remote", &self.remote, REF], &[]).await?;
        let Some(commit) = listed.split_whitespace().next().map(str::to_owned) else {
            return Ok(None);
        };
        remote_git(
            &self.scratch,
            &["fetch", "--quiet", "--no-tags", &self.remote, &commit],
            &[],
        )
        .await?;
        Ok(Some(commit))
    }

    /// The index at `commit` (an empty one for none).
    async fn index_at(&self, commit: Option<&str>) -> Result<Index> {
        let Some(commit) = commit else {
            return Ok(Index::default());
        };
        let text = remote_git(
            &self.scratch,
            &["show", &format!("{commit}:{}", crate::INDEX)],
            &[],
        )
        .await?;
        let index: Index = serde_json::from_str(&text).map_err(|e| SopError::Corrupt {
            file: PathBuf::from(format!("{BRANCH}:{}", crate::INDEX)),
            detail: format!("does not parse at {commit}: {e}"),
        })?;
        index.validate().map_err(|detail| SopError::Corrupt {
            file: PathBuf::from(format!("{BRANCH}:{}", crate::INDEX)),
            detail: format!("{detail} (at {commit})"),
        })?;
        Ok(index)
    }

    /// The shared index as the remote holds it now.
    pub async fn read(&self) -> Result<Index> {
        let _one = self.busy.lock().await;
        let commit = self.fetch().await?;
        self.index_at(commit.as_deref()).await
    }

    /// Apply `change` to the shared index and push it as one commit with `message`; retried
    /// from the remote's newer index while another machine's update goes in first. `change`
    /// may run several times, each time on a fresh index: it must only change the index.
    pub async fn update<T>(
        &self,
        message: &str,
        mut change: impl FnMut(&mut Index) -> Result<T>,
    ) -> Result<T> {
        let _one = self.busy.lock().await;
        for _ in 0..ATTEMPTS {
            let parent = self.fetch().await?;
            let mut index = self.index_at(parent.as_deref()).await?;
            let result = change(&mut index)?;
            index.validate().map_err(|detail| SopError::Corrupt {
                file: PathBuf::from(format!("{BRANCH}:{}", crate::INDEX)),
                detail: format!("the change would make it invalid ({detail}); nothing was pushed"),
            })?;
            let commit = self.commit(&index, parent.as_deref(), message).await?;
            if self.push(&commit, parent.as_deref()).await? {
                return Ok(result);
            }
        }
        Err(SopError::Git {
            args: format!("push {REF}"),
            message: format!(
                "{ATTEMPTS} attempts in a row lost to other machines' updates; try again"
            ),
        })
    }

    /// A commit holding `index` as its only file, on top of `parent`.
    async fn commit(&self, index: &Index, parent: Option<&str>, message: &str) -> Result<String> {
        let mut bytes = serde_json::to_vec_pretty(index).map_err(|e| SopError::Corrupt {
            file: PathBuf::from(crate::INDEX),
            detail: format!("does not serialize: {e}"),
        })?;
        bytes.push(b'\n');
        let file = self.scratch.join("index.json.next");
        std::fs::write(&file, &bytes).map_err(|source| SopError::Io {
            path: file.clone(),
            source,
        })?;
        let dir = &self.scratch;
        let blob = remote_git(dir, &["hash-object", "-w", "--", "index.json.next"], &[]).await?;
        remote_git(dir, &["read-tree", "--empty"], &[]).await?;
        let info = format!("100644,{blob},{}", crate::INDEX);
        remote_git(dir, &["update-index", "--add", "--cacheinfo", &info], &[]).await?;
        let tree = remote_git(dir, &["write-tree"], &[]).await?;
        let mut args = vec![
            "-c",
            "user.name=Baton",
            "-c",
            "user.email=baton@localhost",
            "commit-tree",
            &tree,
            "-m",
            message,
        ];
        if let Some(parent) = parent {
            args.extend(["-p", parent]);
        }
        remote_git(dir, &args, &[]).await
    }

    /// Push `commit` as the branch if the branch is still `parent` (absent for `None`):
    /// whether it went in.
    async fn push(&self, commit: &str, parent: Option<&str>) -> Result<bool> {
        let lease = format!("--force-with-lease={REF}:{}", parent.unwrap_or(""));
        let refspec = format!("{commit}:{REF}");
        let out = remote_git(
            &self.scratch,
            &["push", "--porcelain", &lease, &self.remote, &refspec],
            &[1],
        )
        .await?;
        // `--porcelain` marks each ref: ` `/`+`/`*` updated, `!` rejected — by the lease
        // (another machine's update went in: try again) or by the remote itself (a hook, a
        // protected branch: say so, trying again would not help).
        let updated = out
            .lines()
            .any(|line| line.starts_with([' ', '+', '*']) && line.contains(REF));
        let rejected = out.lines().find(|line| line.starts_with('!'));
        let raced = rejected.is_some_and(|line| {
            // A push racing another one to the same ref: the lease or the fast-forward check
            // failed, or the remote's compare-and-swap of the ref did.
            [
                "stale info",
                "fetch first",
                "non-fast-forward",
                "failed to update ref",
                "cannot lock ref",
            ]
            .iter()
            .any(|why| line.contains(why))
        });
        match (updated, rejected, raced) {
            (true, _, _) => Ok(true),
            (false, Some(_), true) => Ok(false),
            (false, Some(line), false) => Err(SopError::Git {
                args: format!("push {REF}"),
                message: format!("the remote refused the update: {}", line.trim()),
            }),
            (false, None, _) => Err(SopError::Git {
                args: format!("push {REF}"),
                message: format!("neither pushed nor rejected: {out}"),
            }),
        }
    }
}

/// The feature the goals handed to workers are tasks of.
pub const GOALS_FEATURE: &str = "goals";

impl Index {
    /// Add goal `id` (a run's id) titled `title` as a pending task of [`GOALS_FEATURE`];
    /// nothing if it is there already (an update retried after its push went in).
    pub fn add_goal(&mut self, id: &str, title: &str) {
        if self.tasks.iter().any(|task| task.id == id) {
            return;
        }
        let now = crate::time::now_rfc3339();
        self.features
            .entry(GOALS_FEATURE.to_owned())
            .or_insert_with(|| crate::Feature {
                title: "Goals handed to workers".into(),
                phase: crate::Phase::Impl,
                brief: None,
                require_tests: false,
                created: now.clone(),
                updated: now.clone(),
            });
        let task = crate::Task {
            id: id.to_owned(),
            alias: self.fresh_alias(id),
            feature: GOALS_FEATURE.to_owned(),
            title: title.trim().to_owned(),
            description: String::new(),
            status: crate::Status::Pending,
            dependencies: Vec::new(),
            priority: crate::Priority::default(),
            spec_required: false,
            spec_triggers: Vec::new(),
            spec_ref: None,
            claimed_by: None,
            runs: vec![id.to_owned()],
            metadata: serde_json::Map::new(),
            created: now.clone(),
            updated: now,
        };
        self.tasks.push(task);
    }

    /// Move goal `id` to `status`, claimed by `agent` on `branch` until `lease_expires`
    /// (RFC 3339) while in progress, with `metadata` merged in.
    pub fn move_goal(
        &mut self,
        id: &str,
        status: crate::Status,
        claim: Option<crate::Claim>,
        metadata: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let at = self.find(id)?;
        let task = &mut self.tasks[at];
        task.status = status;
        task.claimed_by = claim;
        task.metadata.extend(metadata);
        task.updated = crate::time::now_rfc3339();
        Ok(())
    }
}
