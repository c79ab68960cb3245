use std::io::Read as _;
use std::path::PathBuf;

use baton_knowledge::Library;
use baton_rx::{RuleBook, today, validate_bytes};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{Failure, pretty, print};
use crate::config::Config;

/// Largest prescription file read: a prescription is a few kilobytes; this bounds memory on
/// a wrong file.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// `baton rx …`
#[derive(Debug, Subcommand)]
pub enum RxCommand {
    /// Validate prescription files (FHIR R4 Bundles or Baton's simple JSON; `-` reads stdin)
    /// against the rule tables; exit 1 when any is invalid.
    Validate(ValidateArgs),
}

/// `baton rx validate`
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Prescription files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print the reports as JSON (`[{file, report}]`) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The rule book from the configured knowledge root.
pub(super) fn book(config: &Config) -> Result<RuleBook, Failure> {
    let root = config.knowledge_root();
    let library = Library::load(&root).map_err(|e| Failure::usage(e.to_string()))?;
    RuleBook::from_library(&library).map_err(|e| Failure::usage(e.to_string()))
}

fn read(file: &PathBuf) -> Result<Vec<u8>, Failure> {
    let failed =
        |e: std::io::Error| Failure::usage(format!("cannot read `{}`: {e}", file.display()));
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(failed)?;
    } else {
        std::fs::File::open(file)
            .map_err(failed)?
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(failed)?;
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Failure::usage(format!(
            "`{}` is larger than {MAX_FILE_BYTES} bytes: not a prescription",
            file.display()
        )));
    }
    Ok(bytes)
}

pub(super) async fn run(config: Config, command: RxCommand) -> Result<(), Failure> {
    match command {
        RxCommand::Validate(args) => {
            let book = book(&config)?;
            let today = today();
            let mut reports = Vec::with_capacity(args.files.len());
            for file in &args.files {
                let bytes = read(file)?;
                reports.push((
                    file.display().to_string(),
                    validate_bytes(&book, &bytes, today),
                ));
            }
            let invalid = reports.iter().filter(|(_, r)| !r.valid).count();
            if args.json {
                let list: Vec<_> = reports
                    .iter()
                    .map(|(file, report)| json!({ "file": file, "report": report }))
                    .collect();
                print(&pretty(&serde_json::Value::Array(list))?)?;
            } else {
                let mut out = String::new();
                for (file, report) in &reports {
                    let schedule = report
                        .schedule
                        .map(|s| format!("{s:?}"))
                        .unwrap_or_else(|| "schedule ?".into());
                    let category = report
                        .category
                        .map(|c| format!("category {c}"))
                        .unwrap_or_else(|| "category ?".into());
                    out.push_str(&format!(
                        "{file}: {} ({schedule}, {category})\n",
                        if report.valid { "valid" } else { "INVALID" }
                    ));
                    for finding in &report.findings {
                        out.push_str(&format!(
                            "  {} {} at {}: {}\n",
                            finding.code, finding.rule, finding.path, finding.message
                        ));
                    }
                }
                out.push_str(&format!(
                    "{} prescription(s): {} valid, {invalid} invalid (rules {})\n",
                    reports.len(),
                    reports.len() - invalid,
                    book.version
                ));
                print(&out)?;
            }
            if invalid > 0 {
                return Err(Failure::runtime(format!(
                    "{invalid} of {} prescription(s) invalid",
                    reports.len()
                )));
            }
            Ok(())
        }
    }
}
