//! `baton doctor`: what this installation can do, one line per check — ok, warn or fail — with
//! the fix for anything short of ok. It reads and probes: a sled store that does not exist yet
//! is reported, not created (a PostgreSQL database gets Baton's tables, as it would from any
//! Baton process that connects).

use std::time::Duration;

use baton_runs::{Ownership, StoreApi as _, StoreHandle};
use clap::Args;
use serde::Serialize;

use super::{Failure, pretty, print};
use crate::config::Config;

/// How long the model endpoint may take to answer.
const PROBE: Duration = Duration::from_secs(10);
/// How long reaching the store and walking its audit chain may take (a large chain takes a
/// while to walk).
const STORE_PROBE: Duration = Duration::from_secs(300);

/// `baton doctor`
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the checks as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Check {
    status: Status,
    check: &'static str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn ok(check: &'static str, detail: String) -> Check {
    Check {
        status: Status::Ok,
        check,
        detail,
        fix: None,
    }
}

fn short(status: Status, check: &'static str, detail: String, fix: &str) -> Check {
    Check {
        status,
        check,
        detail,
        fix: Some(fix.to_owned()),
    }
}

/// Run every check on `config` (or report why it does not load); exit 1 when any failed.
pub(super) async fn run(config: Result<Config, Failure>, args: &DoctorArgs) -> Result<(), Failure> {
    let checks = match config {
        Err(failure) => vec![short(
            Status::Fail,
            "config",
            failure.message,
            "correct the file (unknown keys are refused so a typo never falls back to a default)",
        )],
        Ok(config) => vec![
            config_check(&config),
            policy_check(&config),
            store_check(&config).await,
            onnx_check(&config),
            commands_check(),
            model_check(&config).await,
            clients_check(&config),
        ],
    };
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if args.json {
        let value = serde_json::to_value(&checks)
            .map_err(|e| Failure::runtime(format!("cannot render the checks: {e}")))?;
        print(&pretty(&value)?)?;
    } else {
        print(&render(&checks))?;
    }
    match failed {
        0 => Ok(()),
        n => Err(Failure::runtime(format!(
            "{n} check{} failed",
            if n == 1 { "" } else { "s" }
        ))),
    }
}

fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        let status = match check.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        let mut lines = check.detail.lines();
        let first = lines.next().unwrap_or_default();
        out.push_str(&format!("{status:<5} {:<9} {first}\n", check.check));
        for line in lines {
            out.push_str(&format!("{:16}{line}\n", ""));
        }
        if let Some(fix) = &check.fix {
            out.push_str(&format!("{:16}fix: {fix}\n", ""));
        }
    }
    out
}

fn config_check(config: &Config) -> Check {
    ok(
        "config",
        match &config.path {
            Some(path) => format!(
                "{} (data in {})",
                path.display(),
                config.data_dir().display()
            ),
            None => format!(
                "no baton.toml here: built-in defaults (data in {})",
                config.data_dir().display()
            ),
        },
    )
}

fn policy_check(config: &Config) -> Check {
    let file = config.policy_file();
    match baton_policies::PolicyStore::open(Some(file.clone()), false) {
        Ok(store) => {
            let status = store.status();
            let from = match &status.digest {
                Some(digest) => format!("{} (sha256 {digest}…)", file.display()),
                None => format!("no {}: built-in defaults", file.display()),
            };
            ok(
                "policy",
                format!(
                    "{from}: sandbox {}, approval {}, {} rule{}",
                    status.sandbox,
                    status.approval,
                    status.rules,
                    if status.rules == 1 { "" } else { "s" }
                ),
            )
        }
        Err(error) => short(
            Status::Fail,
            "policy",
            error.to_string(),
            "correct the policy file; the server refuses to start on a broken one (docs/policies.md)",
        ),
    }
}

async fn store_check(config: &Config) -> Check {
    let options = match config.store_options() {
        Ok(options) => options,
        Err(error) => return short(Status::Fail, "store", error.to_string(), "correct [store]"),
    };
    let postgres = options.url.is_some();
    let data_dir = config.data_dir();
    if !postgres && !data_dir.join("store").exists() {
        return ok(
            "store",
            format!(
                "sled in {}: not created yet (the first call creates it)",
                data_dir.display()
            ),
        );
    }
    let store = StoreHandle::new(data_dir, Ownership::Borrow).with_options(options);
    let place = match postgres {
        true => format!("PostgreSQL {}", store.location()),
        false => format!("sled {}", store.location()),
    };
    let verified = tokio::time::timeout(STORE_PROBE, store.verify_audit()).await;
    match verified {
        Ok(Ok(report)) => match report.problem {
            None => ok(
                "store",
                format!(
                    "{place}: audit chain verified, {} records, head {}…",
                    report.verified,
                    &report.head_hash[..report.head_hash.len().min(12)]
                ),
            ),
            Some(problem) => short(
                Status::Fail,
                "store",
                format!("{place}: the audit chain does not verify: {problem}"),
                "`baton audit verify` names the first bad record; after checking, `baton audit recover --accept-loss --reason TEXT`",
            ),
        },
        Ok(Err(error)) => short(
            Status::Fail,
            "store",
            format!("{place}: {error}"),
            match postgres {
                true => {
                    "start PostgreSQL (≥ 15) or correct `[store] url` / BATON_STORE_URL (docs/teams.md)"
                }
                false => "check the data folder's permissions, or stop the process holding it",
            },
        ),
        Err(_) => short(
            Status::Fail,
            "store",
            format!("{place}: no answer within {} s", STORE_PROBE.as_secs()),
            "check that the database host is reachable from here",
        ),
    }
}

fn onnx_check(config: &Config) -> Check {
    let runtime = match config.onnx() {
        Ok(onnx) => onnx.runtime,
        Err(error) => return short(Status::Fail, "onnx", error.to_string(), "correct [vision]"),
    };
    let Some(runtime) = runtime else {
        return short(
            Status::Warn,
            "onnx",
            "no ONNX Runtime: vision_segment and vision_process `method: onnx`, vision_tag's category and dsp_separate `method: onnx` refuse; everything else works".to_owned(),
            "pip install onnxruntime==1.31.1, then set ORT_DYLIB_PATH (or [vision] onnx_runtime) to its onnxruntime/capi/libonnxruntime.so.1.31.1",
        );
    };
    match baton_onnx::runtime_version(Some(&runtime)) {
        Ok(version) => ok(
            "onnx",
            format!("ONNX Runtime {version} at {}", runtime.display()),
        ),
        Err(error) => short(
            Status::Fail,
            "onnx",
            error.to_string(),
            "point ORT_DYLIB_PATH (or [vision] onnx_runtime) at the onnxruntime==1.31.1 wheel's libonnxruntime.so.1.31.1",
        ),
    }
}

fn commands_check() -> Check {
    let host = baton_sop::host_confinement();
    match (&host.backend, &host.unavailable) {
        (Some(_), None) => {
            let mut what = Vec::new();
            if host.files {
                what.push("write only the writable roots (.git read-only)");
            }
            if host.network {
                what.push("reach no network unless a rule grants it");
            }
            if host.process_tree {
                what.push("die with their process tree");
            }
            if host.env_scrubbed {
                what.push("see a scrubbed environment");
            }
            let version = host.version.as_deref().unwrap_or("confined");
            ok(
                "commands",
                format!(
                    "{version}: commands under workspace-write {}",
                    what.join(", ")
                ),
            )
        }
        (_, why) => short(
            Status::Fail,
            "commands",
            format!(
                "commands under workspace-write are refused (never run bare): {}",
                why.as_deref().unwrap_or("no confinement backend")
            ),
            "run Linux 6.12 or later with Landlock enabled (lsm=landlock,…), or apt-get install bubblewrap; either needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)",
        ),
    }
}

async fn model_check(config: &Config) -> Check {
    let Some(url) = config.model_base_url() else {
        return short(
            Status::Warn,
            "model",
            "no model endpoint: `baton run` and agents_run need one (or a cassette to replay)"
                .to_owned(),
            "set [model] base_url and api_key_env in baton.toml, or OPENAI_BASE_URL and OPENAI_API_KEY",
        );
    };
    let key_env = config.model_key_env();
    // Shown without any user:password the URL carries.
    let base = match reqwest::Url::parse(&url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.as_str().trim_end_matches('/').to_owned()
        }
        Err(error) => format!("the model URL ({error})"),
    };
    let models = format!("{}/models", url.trim_end_matches('/'));
    let mut request = reqwest::Client::new().get(&models).timeout(PROBE);
    if let Ok(key) = std::env::var(&key_env) {
        request = request.bearer_auth(key);
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            ok("model", format!("{base} answers (GET /models)"))
        }
        Ok(response) if matches!(response.status().as_u16(), 401 | 403) => short(
            Status::Fail,
            "model",
            format!(
                "{base} refused the key in {key_env} ({})",
                response.status()
            ),
            "set a valid key in the variable `[model] api_key_env` names",
        ),
        Ok(response) => short(
            Status::Warn,
            "model",
            format!("{base} answers GET /models with {}", response.status()),
            "check [model] base_url: it should end at the API root (…/v1)",
        ),
        Err(error) => short(
            Status::Fail,
            "model",
            format!("{base} cannot be reached: {}", without_url(&error)),
            "start the model server, or correct [model] base_url / OPENAI_BASE_URL",
        ),
    }
}

/// reqwest's error without the URL (already named) and with its cause.
fn without_url(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut cause = error.source();
    let mut deepest = None;
    while let Some(next) = cause {
        deepest = Some(next.to_string());
        cause = next.source();
    }
    deepest.unwrap_or_else(|| error.to_string())
}

fn clients_check(config: &Config) -> Check {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "baton".to_owned());
    let mut args = vec!["serve".to_owned()];
    if let Some(path) = &config.path {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        args.extend(["--config".to_owned(), path.display().to_string()]);
    }
    let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    let codex = format!(
        "Codex (~/.codex/config.toml):\n  [mcp_servers.baton]\n  command = {exe:?}\n  args = [{}]",
        quoted.join(", ")
    );
    let claude = format!(
        "Claude Desktop (claude_desktop_config.json):\n  {{\"mcpServers\": {{\"baton\": {{\"command\": {exe:?}, \"args\": [{}]}}}}}}",
        quoted.join(", ")
    );
    ok("clients", format!("{codex}\n{claude}"))
}
