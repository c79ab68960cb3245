use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::{Failure, pretty, print};

/// `baton sop …`
#[derive(Debug, Subcommand)]
pub enum SopCommand {
    /// Check mini-specs (missing, older than the limit, or governing files changed since their
    /// review); exit 1 on a blocking finding. For a pre-commit hook and CI.
    Guard(GuardArgs),
}

/// `baton sop guard`
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// The repository (default: the working directory).
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// A spec older than this many days is stale.
    #[arg(long, default_value_t = 30)]
    pub max_age_days: u32,
    /// Output: a line per finding, the JSON report, or SARIF 2.1.0.
    #[arg(long, value_enum, default_value = "text")]
    pub format: GuardFormat,
}

/// Output of `baton sop guard`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GuardFormat {
    /// One line per finding.
    Text,
    /// The report as JSON.
    Json,
    /// SARIF 2.1.0, for code-scanning viewers.
    Sarif,
}

// The guard reads the repository and writes nothing: it runs directly, without the store, so
// a hook works in any clone — even one where Baton has never run.
pub(super) async fn run(command: SopCommand) -> Result<(), Failure> {
    match command {
        SopCommand::Guard(args) => {
            let repo_arg = args.repo.as_ref().map(|p| p.display().to_string());
            let repo =
                baton_sop::Repo::open(repo_arg.as_deref(), &baton_kit::ToolContext::default())
                    .await
                    .map_err(|e| Failure::usage(e.to_string()))?;
            let report = baton_sop::guard(&repo, i64::from(args.max_age_days), baton_sop::today())
                .await
                .map_err(|e| Failure::runtime(e.to_string()))?;
            let text = match args.format {
                GuardFormat::Text => {
                    let mut out = String::new();
                    for finding in &report.findings {
                        out.push_str(&format!(
                            "{} {} [{}] {}\n",
                            if finding.blocking { "BLOCK" } else { "note " },
                            finding.spec.as_deref().unwrap_or("-"),
                            finding.kind,
                            finding.message
                        ));
                    }
                    out.push_str(&format!(
                        "{} spec(s) checked, {} finding(s), {}\n",
                        report.checked,
                        report.findings.len(),
                        if report.blocking {
                            "blocking"
                        } else {
                            "none blocking"
                        }
                    ));
                    out
                }
                GuardFormat::Json => pretty(
                    &serde_json::to_value(&report).map_err(|e| Failure::runtime(e.to_string()))?,
                )?,
                GuardFormat::Sarif => pretty(&baton_sop::sarif(&report))?,
            };
            print(&text)?;
            if report.blocking {
                return Err(Failure::runtime(
                    "blocking spec findings: review the specs (sop_spec_create) and commit again",
                ));
            }
            Ok(())
        }
    }
}
