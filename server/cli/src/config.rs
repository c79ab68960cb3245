use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use baton_kit::Role;
use baton_mcp::{
    AgentsSection, ApprovalsSection, ConsoleSection, HttpSection, ServerSection, Settings,
    StdioSection,
};
use serde::Deserialize;

/// Where the configuration came from and what it says.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file read, if any (`--config`, `BATON_CONFIG`, or `./baton.toml` when present).
    pub path: Option<PathBuf>,
    /// Relative paths in the file are relative to this folder.
    pub base_dir: PathBuf,
    /// The parsed contents.
    pub file: ConfigFile,
    /// The store's URL given on the command line (`baton worker --store`): before the
    /// environment and the file.
    pub store_flag: Option<String>,
}

/// `baton.toml`. Every section is optional; unknown keys are an error, so a typo never
/// silently falls back to a default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where the store lives; `BATON_HOME` overrides it; default `./.baton`.
    pub data_dir: Option<PathBuf>,
    /// Settings common to all transports.
    #[serde(default)]
    pub server: ServerSection,
    /// The Streamable HTTP transport.
    #[serde(default)]
    pub http: HttpSection,
    /// The stdio transport.
    #[serde(default)]
    pub stdio: StdioSection,
    /// The person at this machine's shell, as the `baton` command acts for them.
    #[serde(default)]
    pub cli: CliSection,
    /// Knowledge packs.
    #[serde(default)]
    pub knowledge: KnowledgeSection,
    /// The policy file.
    #[serde(default)]
    pub policy: PolicySection,
    /// How approvals are asked for, and who is told about them.
    #[serde(default)]
    pub approvals: ApprovalsSection,
    /// The reviewers' console.
    #[serde(default)]
    pub console: ConsoleSection,
    /// The model endpoint agents use.
    #[serde(default)]
    pub model: ModelSection,
    /// What agents may use besides Baton's own tools.
    #[serde(default)]
    pub agents: AgentsSection,
    /// The vision pack's models.
    #[serde(default)]
    pub vision: VisionSection,
    /// The dsp pack's separation model.
    #[serde(default)]
    pub dsp: DspSection,
    /// What one call may use.
    #[serde(default)]
    pub limits: LimitsSection,
    /// Signed checkpoints of the audit log.
    #[serde(default)]
    pub audit: AuditSection,
    /// Where the store is: sled in the data folder, or PostgreSQL for a team.
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub workers: WorkersSection,
    /// Metrics and traces for the people who run Baton.
    #[serde(default)]
    pub telemetry: baton_mcp::TelemetrySection,
}

/// `[workers]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersSection {
    /// Batch calls (`vision_batch`) hand their items to the store's workers (`baton worker`)
    /// instead of running them here. The items name files by path: the workers must see the
    /// same paths (the same machine, or a shared disk).
    pub batches: bool,
    /// Remotes (URLs or paths, as `git remote get-url origin` prints them; a trailing `*`
    /// matches any that start with the rest) that goals from `agents_run` may be handed to
    /// workers for: the workers push to them with their own credentials, outside any tool
    /// call, so a caller may not name just any repository the server can see. Empty (the
    /// default): `agents_run` keeps its goals in the server. `baton run --on-workers` is the
    /// local user's, with the user's own remote, and is not limited by this.
    pub remotes: Vec<String>,
}

impl WorkersSection {
    /// Whether goals from `agents_run` may go to workers pushing to `remote`. A remote with a
    /// `..` segment never matches: `shop/*` must not reach `shop/../secret`.
    pub fn allows_remote(&self, remote: &str) -> bool {
        if remote
            .split(['/', ':', '\\'])
            .any(|segment| segment == "..")
        {
            return false;
        }
        self.remotes
            .iter()
            .any(|allowed| match allowed.strip_suffix('*') {
                Some(prefix) => remote.starts_with(prefix),
                None => remote == allowed,
            })
    }
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `postgres://user@host:port/database`: every store operation on PostgreSQL (≥ 15), shared
    /// by every Baton process pointed at it; `BATON_STORE_URL` overrides it. Absent: sled in
    /// the data folder.
    pub url: Option<String>,
    /// Largest artifact kept in PostgreSQL, in MiB; larger ones are refused.
    pub max_artifact_mb: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            url: None,
            max_artifact_mb: baton_runs::DEFAULT_MAX_ARTIFACT_BYTES >> 20,
        }
    }
}

/// `[audit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// The ed25519 seed (32 bytes, raw or hex) that signs checkpoints; `BATON_AUDIT_KEY`
    /// overrides it. Must lie outside the data folder. No key: no checkpoints.
    pub checkpoint_key: Option<PathBuf>,
    /// Sign after at most this many records.
    pub checkpoint_every: u64,
    /// Sign at least this often while records come in (e.g. `60s`, `5m`).
    pub checkpoint_interval: String,
    /// Where checkpoints are appended; default `<data dir>/audit.checkpoints.jsonl`.
    pub checkpoint_file: Option<PathBuf>,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            checkpoint_key: None,
            checkpoint_every: 1000,
            checkpoint_interval: "60s".into(),
            checkpoint_file: None,
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Memory one call may use, in MiB (default 2048). Tools estimate a call's memory from its
    /// parameters and input headers and refuse it before starting when it is over, naming the
    /// parameter to change.
    pub call_memory_mb: u64,
    /// Calls one principal may have running at once (default 16).
    pub calls_per_principal: usize,
    /// Heavy calls (audio, images) running at once across the server (default: the cores).
    pub heavy_calls: usize,
    /// Seconds a call past a limit waits for room before it is refused as busy (default 30).
    pub busy_wait_s: u64,
    /// Calls one principal may start a minute, from any face (bursts up to that many); past
    /// it a call is refused as busy, saying when to come back. 0 (the default): no limit.
    pub calls_per_minute: u32,
    /// Largest inline `data:` content a file argument takes, in KiB (default 4096); larger
    /// content is uploaded with `POST /v1/artifacts`.
    pub inline_max_kb: usize,
    /// Bytes of uploads (and inline content) one principal may keep, in MiB; 0 (the
    /// default): no quota. `baton artifacts gc` frees what retention lets go.
    pub upload_quota_mb: u64,
    /// Days an artifact is kept after it was last stored; `baton artifacts gc` deletes older
    /// ones (default 30).
    pub artifact_keep_days: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            call_memory_mb: baton_kit::DEFAULT_MEMORY_BUDGET >> 20,
            calls_per_principal: 16,
            heavy_calls: std::thread::available_parallelism().map_or(1, usize::from),
            busy_wait_s: 30,
            calls_per_minute: 0,
            inline_max_kb: 4096,
            upload_quota_mb: 0,
            artifact_keep_days: 30,
        }
    }
}

impl LimitsSection {
    /// The gate's call limits these settings say.
    pub fn call_limits(&self) -> baton_gate::CallLimits {
        baton_gate::CallLimits::new(
            self.calls_per_principal,
            self.heavy_calls,
            std::time::Duration::from_secs(self.busy_wait_s),
        )
        .pacing(self.calls_per_minute)
    }

    /// What inline content and uploads these settings allow.
    pub fn uploads(&self) -> baton_gate::Uploads {
        baton_gate::Uploads {
            inline_max: self.inline_max_kb.saturating_mul(1024),
            quota: self.upload_quota_mb.saturating_mul(1 << 20),
        }
    }
}

/// `[dsp]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DspSection {
    /// An ONNX mask model for `dsp_separate`'s `method: onnx` (`[1, bins, frames]` magnitude in,
    /// `[1, stems, bins, frames]` masks out); `BATON_SEPARATION_MODEL` overrides it. It runs on
    /// the runtime of `[vision] onnx_runtime` / `ORT_DYLIB_PATH`.
    pub separation_model: Option<PathBuf>,
    /// Its stems' names, in output order (`["vocals", "accompaniment"]`);
    /// `BATON_SEPARATION_STEMS` (comma-separated) overrides them.
    pub separation_stems: Vec<String>,
}

/// `[vision]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VisionSection {
    /// ONNX Runtime's shared library (`libonnxruntime.so.1.31.1`); `ORT_DYLIB_PATH` overrides it.
    pub onnx_runtime: Option<PathBuf>,
    /// The segmentation model for `method: onnx`; `BATON_SEGMENTATION_MODEL` overrides it.
    pub segmentation_model: Option<PathBuf>,
    /// `isnet` ((x − 128) / 256, the default) or `imagenet`; `BATON_SEGMENTATION_NORMALIZE`
    /// overrides it.
    pub segmentation_normalize: Option<Normalization>,
    /// An image classifier for `vision_tag`'s `category`; `BATON_CLASSIFIER_MODEL` overrides it.
    pub classifier_model: Option<PathBuf>,
    /// Its labels, one per line; `BATON_CLASSIFIER_LABELS` overrides it.
    pub classifier_labels: Option<PathBuf>,
}

/// How a segmentation model wants its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    /// `(x − 128) / 256`.
    Isnet,
    /// ImageNet mean and standard deviation.
    Imagenet,
}

/// `[model]`: an OpenAI-compatible Chat Completions endpoint. `OPENAI_BASE_URL`,
/// `OPENAI_API_KEY` and `OPENAI_MODEL` override it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// Base URL, e.g. `https://api.openai.com/v1` or a local server's.
    pub base_url: Option<String>,
    /// Model name (default `gpt-4.1`).
    pub model: Option<String>,
    /// The environment variable holding the API key (default `OPENAI_API_KEY`).
    pub api_key_env: Option<String>,
    /// Which API the endpoint is asked through: `chat` (Chat Completions, default: every
    /// OpenAI-compatible server) or `responses` (OpenAI's Responses API, streamed). An agent
    /// may name its own (`api` in its definition).
    pub api: baton_agents::Api,
    /// Whether answers stream in as the model writes them (default `true`; `false` for a
    /// Chat Completions server that cannot stream). The Responses API always streams.
    pub stream: Option<bool>,
    /// Most tokens a run's model turns may use; a run that reaches it stops `over_budget`
    /// (resumable with a larger `--budget`).
    pub max_tokens_per_run: Option<u64>,
    /// Most a run's model turns may cost, at `prices`; every model a run asks must be priced.
    pub max_cost_per_run: Option<f64>,
    /// Prices per model name (`[model.prices."gpt-4.1"] input_per_mtok = 2.0`, per million
    /// tokens), for `max_cost_per_run` and the cost a run reports.
    pub prices: std::collections::BTreeMap<String, baton_agents::Price>,
}

impl ModelSection {
    /// The budget every run is held to, with the per-run token budget `tokens` (`--budget`)
    /// in place of `max_tokens_per_run` when given.
    pub fn budget(&self, tokens: Option<u64>) -> Result<baton_agents::Budget, String> {
        if let Some(max) = self.max_cost_per_run
            && !(max.is_finite() && max > 0.0)
        {
            return Err(format!(
                "[model] max_cost_per_run = {max}: give a positive amount"
            ));
        }
        if let Some((model, _)) = self.prices.iter().find(|(_, p)| {
            !(p.input_per_mtok.is_finite()
                && p.output_per_mtok.is_finite()
                && p.input_per_mtok >= 0.0
                && p.output_per_mtok >= 0.0)
        }) {
            return Err(format!(
                "[model.prices.\"{model}\"]: prices must be finite and not negative"
            ));
        }
        if tokens == Some(0) || self.max_tokens_per_run == Some(0) {
            return Err("a token budget of 0 allows no model call: give at least 1".into());
        }
        Ok(baton_agents::Budget {
            max_tokens: tokens.or(self.max_tokens_per_run),
            max_cost: self.max_cost_per_run,
            prices: self.prices.clone(),
        })
    }
}

/// `[policy]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// The policy file, watched for changes (default: `policy.toml` beside this file).
    pub file: Option<PathBuf>,
}

/// `[cli]`: the person at this machine's shell. Who that is comes from the operating system
/// (the process's user id → user name), never from the environment or this file: `USER` and
/// the config are the caller's to set, so neither may decide whose approval is whose.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CliSection {
    /// No longer accepted: present only to refuse it with a clear message.
    principal: Option<String>,
    /// The roles of the person at the shell (default: `admin`).
    pub roles: BTreeSet<Role>,
}

impl Default for CliSection {
    fn default() -> Self {
        CliSection {
            principal: None,
            roles: BTreeSet::from([Role::Admin]),
        }
    }
}

impl CliSection {
    /// The principal `baton tools call` and `baton approvals …` act as: the OS user running
    /// this process.
    pub fn principal(&self) -> baton_kit::Principal {
        baton_kit::Principal::new(os_user(), self.roles.iter().copied())
    }
}

/// The name of the user this process runs as, from its real user id and `/etc/passwd`
/// (`uid:<n>` when the id has no entry there).
pub fn os_user() -> String {
    let uid = rustix::process::getuid().as_raw();
    let named = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id = fields.nth(1)?;
                (id.parse::<u32>().ok()? == uid && !name.is_empty()).then(|| name.to_owned())
            })
        });
    named.unwrap_or_else(|| format!("uid:{uid}"))
}

/// `[knowledge]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeSection {
    /// The knowledge root (one folder per pack).
    pub root: Option<PathBuf>,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid `baton.toml`.
    #[error("invalid config `{}`: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What and where (line, column, key), from the TOML parser.
        message: String,
    },
    /// A value parses but cannot be used.
    #[error("invalid config `{}`: {key}: {message}", path.display())]
    Invalid {
        /// The file (or `<defaults>`).
        path: PathBuf,
        /// Which key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// What the MCP face needs of this configuration.
    pub fn mcp_settings(&self) -> Settings {
        Settings {
            source: self.path.clone(),
            server: self.file.server.clone(),
            http: self.file.http.clone(),
            stdio: self.file.stdio.clone(),
            approvals: self.file.approvals.clone(),
            console: self.file.console.clone(),
            telemetry: self.file.telemetry.clone(),
        }
    }

    /// Read `explicit` if given (it must exist), else `./baton.toml` if present, else defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let path = match explicit {
            Some(path) => Some(path.to_owned()),
            None => Some(cwd.join("baton.toml")).filter(|p| p.is_file()),
        };
        let Some(path) = path else {
            return Ok(Config {
                path: None,
                base_dir: cwd,
                file: ConfigFile::default(),
                store_flag: None,
            });
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let file = Config::parse(&path, &text)?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| cwd.clone(), Path::to_owned);
        Ok(Config {
            path: Some(path),
            base_dir,
            file,
            store_flag: None,
        })
    }

    /// Parse and check `text` as the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            message: error.to_string().trim_end().to_owned(),
        })?;
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        if file.cli.principal.is_some() {
            return Err(invalid(
                "cli.principal".into(),
                "is not configurable: the CLI acts as the operating-system user running it \
                 (so nobody can decide an approval under another name); remove the key"
                    .into(),
            ));
        }
        if file.server.max_message_bytes < 1024 {
            return Err(invalid(
                "server.max_message_bytes".into(),
                "must be at least 1024".into(),
            ));
        }
        for (key, value) in [
            ("http.header_timeout_s", file.http.header_timeout_s),
            ("http.body_timeout_s", file.http.body_timeout_s),
            ("http.request_timeout_s", file.http.request_timeout_s),
            ("http.max_connections", file.http.max_connections as u64),
            ("http.max_sessions", file.http.max_sessions as u64),
            ("http.session_idle_s", file.http.session_idle_s),
            ("stdio.max_pending", file.stdio.max_pending as u64),
            (
                "limits.calls_per_principal",
                file.limits.calls_per_principal as u64,
            ),
            ("limits.heavy_calls", file.limits.heavy_calls as u64),
            ("limits.inline_max_kb", file.limits.inline_max_kb as u64),
            ("limits.artifact_keep_days", file.limits.artifact_keep_days),
        ] {
            if value == 0 {
                return Err(invalid(key.into(), "must be at least 1".into()));
            }
        }
        if file.limits.call_memory_mb < 16 {
            return Err(invalid(
                "limits.call_memory_mb".into(),
                "must be at least 16".into(),
            ));
        }
        if file.server.page_size == 0 {
            return Err(invalid(
                "server.page_size".into(),
                "must be at least 1".into(),
            ));
        }
        for (index, token) in file.http.tokens.iter().enumerate() {
            let key = format!("http.tokens[{index}]");
            match (&token.token_sha256, &token.token_env) {
                (Some(hash), None) => {
                    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(invalid(
                            format!("{key}.token_sha256"),
                            "must be 64 hex digits (sha256sum of the token)".into(),
                        ));
                    }
                }
                (None, Some(_)) => {}
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid(
                        key,
                        "give exactly one of `token_sha256` or `token_env`".into(),
                    ));
                }
            }
            if token.principal.trim().is_empty() {
                return Err(invalid(
                    format!("{key}.principal"),
                    "must not be empty".into(),
                ));
            }
        }
        Ok(file)
    }

    /// The data folder: `BATON_HOME`, else `data_dir` from the file, else `./.baton`.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(home) = std::env::var_os("BATON_HOME").filter(|h| !h.is_empty()) {
            return PathBuf::from(home);
        }
        match &self.file.data_dir {
            Some(dir) => self.base_dir.join(dir),
            None => self.base_dir.join(".baton"),
        }
    }

    /// Baton's own files, which no tool may write and no command may see, even inside a
    /// writable root: a call that rewrote the policy, the config (the one read, or without one
    /// the `./baton.toml` the next start would read) or the store could grant itself anything;
    /// one that read the checkpoint key could sign a history of its own, and one that replaced
    /// the ONNX Runtime library (loaded on the first vision call) would run its code in Baton.
    pub fn own_files(&self) -> Vec<PathBuf> {
        let config = (self.path.clone()).unwrap_or_else(|| self.base_dir.join("baton.toml"));
        let mut own = vec![self.policy_file(), self.data_dir(), config];
        own.extend(self.checkpoint_key());
        let checkpoints = self.file.audit.checkpoint_file.as_ref();
        own.extend(checkpoints.map(|file| self.base_dir.join(file)));
        own.extend(self.onnx().ok().and_then(|onnx| onnx.runtime));
        own
    }

    /// The checkpoint signing key's file: `BATON_AUDIT_KEY`, else `[audit] checkpoint_key`.
    pub fn checkpoint_key(&self) -> Option<PathBuf> {
        match std::env::var_os("BATON_AUDIT_KEY").filter(|k| !k.is_empty()) {
            Some(key) => Some(PathBuf::from(key)),
            None => self
                .file
                .audit
                .checkpoint_key
                .as_ref()
                .map(|key| self.base_dir.join(key)),
        }
    }

    /// Checkpoint signing: `BATON_AUDIT_KEY` or `[audit] checkpoint_key` names the key file;
    /// `None` when neither does.
    pub fn checkpoints(&self) -> Result<Option<baton_runs::CheckpointConfig>, ConfigError> {
        let audit = &self.file.audit;
        let Some(key) = self.checkpoint_key() else {
            return Ok(None);
        };
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: self
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from("<defaults>")),
            key: key.into(),
            message,
        };
        let data_dir = self.data_dir();
        let signer = baton_runs::CheckpointKey::load(&key, &data_dir)
            .map_err(|e| invalid("audit.checkpoint_key", e.to_string()))?;
        let interval = humantime::parse_duration(&audit.checkpoint_interval)
            .map_err(|e| invalid("audit.checkpoint_interval", e.to_string()))?;
        if audit.checkpoint_every == 0 {
            return Err(invalid(
                "audit.checkpoint_every",
                "must be at least 1".into(),
            ));
        }
        let file = match &audit.checkpoint_file {
            Some(file) => self.base_dir.join(file),
            None => data_dir.join("audit.checkpoints.jsonl"),
        };
        Ok(Some(baton_runs::CheckpointConfig {
            key: signer,
            every: audit.checkpoint_every,
            interval,
            file,
        }))
    }

    /// The store's URL: `--store`, else `BATON_STORE_URL`, else `[store] url`; `None`: sled.
    pub fn store_url(&self) -> Option<String> {
        self.store_flag
            .clone()
            .or_else(|| std::env::var("BATON_STORE_URL").ok())
            .filter(|url| !url.is_empty())
            .or_else(|| self.file.store.url.clone())
    }

    /// The store's options: where it is ([`Config::store_url`]), checkpoint signing
    /// ([`Config::checkpoints`]), the artifact limit.
    pub fn store_options(&self) -> Result<baton_runs::StoreOptions, ConfigError> {
        let max_mb = self.file.store.max_artifact_mb;
        if max_mb == 0 {
            return Err(ConfigError::Invalid {
                path: self
                    .path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("<defaults>")),
                key: "store.max_artifact_mb".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(baton_runs::StoreOptions {
            checkpoints: self.checkpoints()?,
            url: self.store_url(),
            max_artifact_bytes: max_mb.saturating_mul(1 << 20),
        })
    }

    /// The model endpoint agents use: `OPENAI_BASE_URL`, else `[model] base_url`; `None`
    /// when neither names one.
    pub fn model_base_url(&self) -> Option<String> {
        std::env::var("OPENAI_BASE_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| self.file.model.base_url.clone())
    }

    /// The environment variable holding the model endpoint's key (`OPENAI_API_KEY`).
    pub fn model_key_env(&self) -> String {
        self.file
            .model
            .api_key_env
            .clone()
            .unwrap_or_else(|| "OPENAI_API_KEY".into())
    }

    /// The policy file: `[policy] file`, else `policy.toml` beside the config (or in the
    /// working directory without one). It need not exist: then the built-in policy applies.
    pub fn policy_file(&self) -> PathBuf {
        match &self.file.policy.file {
            Some(file) => self.base_dir.join(file),
            None => self.base_dir.join("policy.toml"),
        }
    }

    /// The vision pack's ONNX settings: the environment over `[vision]` (paths in the file are
    /// relative to it).
    pub fn onnx(&self) -> Result<baton_vision::OnnxConfig, ConfigError> {
        let from_env =
            baton_vision::OnnxConfig::from_env().map_err(|error| ConfigError::Invalid {
                path: "<environment>".into(),
                key: "BATON_SEGMENTATION_NORMALIZE".into(),
                message: error.to_string(),
            })?;
        let section = &self.file.vision;
        Ok(baton_vision::OnnxConfig {
            runtime: from_env
                .runtime
                .or_else(|| section.onnx_runtime.as_ref().map(|p| self.base_dir.join(p))),
            model: from_env.model.or_else(|| {
                section
                    .segmentation_model
                    .as_ref()
                    .map(|p| self.base_dir.join(p))
            }),
            normalize: from_env.normalize.or(match section.segmentation_normalize {
                Some(Normalization::Isnet) => Some(baton_vision::Normalize::Isnet),
                Some(Normalization::Imagenet) => Some(baton_vision::Normalize::Imagenet),
                None => None,
            }),
            classifier: from_env.classifier.or_else(|| {
                section
                    .classifier_model
                    .as_ref()
                    .map(|p| self.base_dir.join(p))
            }),
            classifier_labels: from_env.classifier_labels.or_else(|| {
                section
                    .classifier_labels
                    .as_ref()
                    .map(|p| self.base_dir.join(p))
            }),
        })
    }

    /// The separation model for `dsp_separate`, on the vision pack's ONNX runtime.
    pub fn separation(&self) -> Result<baton_dsp::SeparationConfig, ConfigError> {
        let section = &self.file.dsp;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let stems = match env("BATON_SEPARATION_STEMS") {
            Some(list) => list.split(',').map(|s| s.trim().to_owned()).collect(),
            None => section.separation_stems.clone(),
        };
        if let Some(blank) = stems
            .iter()
            .position(|s| s.is_empty() || s.contains(['/', '\\']))
        {
            return Err(ConfigError::Invalid {
                path: "[dsp] separation_stems / BATON_SEPARATION_STEMS".into(),
                key: format!("separation_stems[{blank}]"),
                message: "a stem name is a file-name part: not empty, no `/` or `\\`".into(),
            });
        }
        Ok(baton_dsp::SeparationConfig {
            runtime: self.onnx()?.runtime,
            model: env("BATON_SEPARATION_MODEL")
                .map(PathBuf::from)
                .or_else(|| {
                    section
                        .separation_model
                        .as_ref()
                        .map(|p| self.base_dir.join(p))
                }),
            stems,
        })
    }

    /// The knowledge root: from the file; else `./knowledge` when it exists; else the
    /// `knowledge/` folder of the source tree this binary was built from.
    pub fn knowledge_root(&self) -> PathBuf {
        if let Some(root) = &self.file.knowledge.root {
            return self.base_dir.join(root);
        }
        let local = self.base_dir.join("knowledge");
        if local.is_dir() {
            return local;
        }
        let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
        std::fs::canonicalize(&built).unwrap_or(built)
    }
}
