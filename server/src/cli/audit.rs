use clap::{Args, Subcommand};

use super::{Failure, print};
use crate::config::Config;
use crate::store::{Ownership, StoreHandle};

/// `baton audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; name the first record that was edited, dropped or reordered.
    Verify,
    /// Print every audit record.
    Export(ExportArgs),
}

/// `baton audit export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// One JSON object per line (the only format for now; kept explicit for scripts).
    #[arg(long, required = true)]
    pub jsonl: bool,
}

const PAGE: usize = 1000;

pub(super) async fn run(config: Config, command: AuditCommand) -> Result<(), Failure> {
    let store = StoreHandle::new(config.data_dir(), Ownership::Borrow);
    let failed = |e: crate::store::StoreError| Failure::runtime(format!("audit log: {e}"));
    match command {
        AuditCommand::Verify => {
            let report = store.verify_audit().await.map_err(failed)?;
            match report.problem {
                None => print(&format!(
                    "audit log verified: {} record{}, head {}\n",
                    report.verified,
                    if report.verified == 1 { "" } else { "s" },
                    report.head_hash
                )),
                Some(problem) => Err(Failure::runtime(format!(
                    "audit log FAILED verification at record {} ({}): {}; the {} records before it verify",
                    problem.seq, problem.kind, problem.detail, report.verified
                ))),
            }
        }
        AuditCommand::Export(_) => {
            let mut after = 0;
            loop {
                let records = store.audit_records(after, PAGE).await.map_err(failed)?;
                let Some(last) = records.last() else {
                    return Ok(());
                };
                after = last.seq;
                let mut out = String::new();
                for record in &records {
                    let line = serde_json::to_string(record)
                        .map_err(|e| Failure::runtime(e.to_string()))?;
                    out.push_str(&line);
                    out.push('\n');
                }
                print(&out)?;
                if records.len() < PAGE {
                    return Ok(());
                }
            }
        }
    }
}
