use baton_runs::StoreApi as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{Failure, print};
use crate::config::Config;
use baton_runs::{Ownership, StoreHandle};

/// `baton audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; name the first record that was edited, dropped, reordered or
    /// lost. With --checkpoints, also prove the log up to the last signed checkpoint was not
    /// rewritten.
    Verify(VerifyArgs),
    /// Print every audit record.
    Export(ExportArgs),
    /// Accept the loss a damaged audit log refuses over (a lost or damaged write-ahead
    /// segment, a chain that does not verify), with a record of who did and why.
    Recover(RecoverArgs),
    /// Write a new checkpoint signing key (a 32-byte seed, hex, mode 0600) and print its
    /// public key.
    Keygen(KeygenArgs),
}

/// `baton audit verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A checkpoint file (JSON lines, as the server writes them) to check against the chain.
    #[arg(long, value_name = "FILE", requires = "public_key")]
    pub checkpoints: Option<PathBuf>,
    /// The checkpoint signer's public key: 64 hex digits, or a file holding them.
    #[arg(long, value_name = "HEX|FILE", requires = "checkpoints")]
    pub public_key: Option<String>,
}

/// `baton audit export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// One JSON object per line (the only format for now; kept explicit for scripts).
    #[arg(long, required = true)]
    pub jsonl: bool,
}

/// `baton audit recover`
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Say that the records named as lost are accepted as lost (required).
    #[arg(long, required = true)]
    pub accept_loss: bool,
    /// Why, for the record.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// `baton audit keygen`
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key; it must not exist, and should lie outside the data folder.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

const PAGE: usize = 1000;

pub(super) async fn run(config: Config, command: AuditCommand) -> Result<(), Failure> {
    if let AuditCommand::Keygen(args) = &command {
        return keygen(&args.out);
    }
    let options = config
        .store_options()
        .map_err(|e| Failure::from(crate::ServerError::from(e)))?;
    let store = StoreHandle::new(config.data_dir(), Ownership::Borrow).with_options(options);
    let failed = |e: baton_runs::StoreError| Failure::runtime(format!("audit log: {e}"));
    match command {
        AuditCommand::Verify(args) => verify(&config, &store, args).await,
        AuditCommand::Recover(args) => {
            if args.reason.trim().is_empty() {
                return Err(Failure::usage("--reason must say why the loss is accepted"));
            }
            let operator = config.file.cli.principal().id;
            let receipt = store
                .recover_audit(args.reason.clone(), operator.clone())
                .await
                .map_err(failed)?;
            print(&format!(
                "audit loss accepted by {operator}: recorded as record {} ({}); the log takes records again\n",
                receipt.seq, receipt.hash
            ))
        }
        AuditCommand::Export(_) => export(&store).await,
        AuditCommand::Keygen(_) => Ok(()),
    }
}

async fn verify(config: &Config, store: &StoreHandle, args: VerifyArgs) -> Result<(), Failure> {
    let failed = |e: baton_runs::StoreError| Failure::runtime(format!("audit log: {e}"));
    let report = match store.verify_audit().await {
        Ok(report) => report,
        // The database does not open: name what can be named from its raw files.
        Err(error @ baton_runs::StoreError::Damaged { .. }) => {
            baton_runs::salvage_audit(&config.data_dir())
                .map_err(|e| Failure::runtime(format!("audit log: {error}; {e}")))?
        }
        Err(error) => return Err(failed(error)),
    };
    if let Some(problem) = report.problem {
        return Err(Failure::runtime(format!(
            "audit log FAILED verification at record {} ({}): {}; the {} records before it verify",
            problem.seq, problem.kind, problem.detail, report.verified
        )));
    }
    let mut out = format!(
        "audit log verified: {} record{}, head {}\n",
        report.verified,
        if report.verified == 1 { "" } else { "s" },
        report.head_hash
    );
    if let (Some(file), Some(key)) = (args.checkpoints, args.public_key) {
        let key = public_key(&key)?;
        let checked = store
            .verify_checkpoints(file.clone(), key.clone())
            .await
            .map_err(failed)?;
        if let Some(problem) = checked.problem {
            return Err(Failure::runtime(format!(
                "audit checkpoints FAILED at record {} ({}): {}; {} checkpoint{} verified, up to record {}",
                problem.seq,
                problem.kind,
                problem.detail,
                checked.verified,
                if checked.verified == 1 { "" } else { "s" },
                checked.covered_seq
            )));
        }
        out.push_str(&format!(
            "checkpoints verified: {}; the log up to record {} was not rewritten\n",
            checked.verified, checked.covered_seq
        ));
    }
    print(&out)
}

/// A public key given as hex, or as a file holding it.
fn public_key(given: &str) -> Result<String, Failure> {
    let text = if Path::new(given).is_file() {
        std::fs::read_to_string(given)
            .map_err(|e| Failure::usage(format!("cannot read `{given}`: {e}")))?
    } else {
        given.to_owned()
    };
    baton_runs::parse_public_key(&text)
        .map_err(|e| Failure::usage(format!("--public-key: {e}")))?;
    Ok(text.trim().to_owned())
}

fn keygen(out: &Path) -> Result<(), Failure> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = baton_runs::CheckpointKey::generate().map_err(|e| Failure::runtime(e.to_string()))?;
    let cannot =
        |e: std::io::Error| Failure::runtime(format!("cannot write `{}`: {e}", out.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(cannot)?;
    file.write_all(format!("{}\n", key.seed_hex()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(cannot)?;
    print(&format!(
        "wrote the checkpoint key to {} (mode 0600; keep it outside the data folder)\npublic key: {}\nkey id: {}\n",
        out.display(),
        key.public_key_hex(),
        key.key_id()
    ))
}

async fn export(store: &StoreHandle) -> Result<(), Failure> {
    let mut after = 0;
    loop {
        let records = store
            .audit_records(after, PAGE)
            .await
            .map_err(|e| Failure::runtime(format!("audit log: {e}")))?;
        let Some(last) = records.last() else {
            return Ok(());
        };
        after = last.seq;
        let mut out = String::new();
        for record in &records {
            let line = serde_json::to_string(record)
                .map_err(|e| Failure::runtime(format!("audit record {}: {e}", record.seq)))?;
            out.push_str(&line);
            out.push('\n');
        }
        print(&out)?;
        if records.len() < PAGE {
            return Ok(());
        }
    }
}
