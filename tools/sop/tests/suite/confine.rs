//! Commands are confined by the kernel, not only checked: `repo_exec` under `workspace-write`
//! with root R writes only inside R (never R/.git) and a private /tmp, reaches no network
//! unless a rule grants it, and sees none of the server's secrets; what it starts dies with
//! it. Baton's own git runs nothing the repository controls. Real processes, real folders.
//! They run under the backend this host picks (Landlock in-process where the kernel has it),
//! and again under bubblewrap (`every_test_here_passes_under_bubblewrap_too`); under the test
//! command they fail (never skip) without a backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_kit::{Principal, Registry, Role, Sandbox, SandboxMode, ToolContext, ToolError};
use baton_test_support::git;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::common::{Fixture, rule};

/// A parent folder outside /tmp (inside the sandbox /tmp is private, which would hide a
/// sibling and prove nothing) holding the repository R and its sibling.
struct Place {
    _parent: tempfile::TempDir,
    root: PathBuf,
    sibling: PathBuf,
    registry: Registry,
}

impl Place {
    /// A place for `test`; `None` (the test is skipped) without a confinement backend.
    fn new(test: &str) -> Option<Place> {
        Place::in_dir(test, Path::new(env!("CARGO_TARGET_TMPDIR")))
    }

    /// A place whose parent folder is made in `dir`.
    fn in_dir(test: &str, dir: &Path) -> Option<Place> {
        let host = baton_sop::host_confinement();
        let why = host.unavailable.as_deref().unwrap_or("no backend");
        if !baton_test_support::needs(test, host.backend.is_some(), why) {
            return None;
        }
        let parent = tempfile::tempdir_in(dir).unwrap();
        let base = parent.path().canonicalize().unwrap();
        let root = base.join("repo");
        let sibling = base.join("sibling");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&sibling).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("README.md"), "# demo\n").unwrap();
        git(&root, &["add", "."]);
        git(&root, &["commit", "-q", "-m", "init"]);
        // Baton's own files, which `sandbox` protects, are there (a missing one in a root is
        // refused) and out of git's way.
        std::fs::create_dir_all(root.join(".baton")).unwrap();
        std::fs::write(root.join("policy.toml"), "sandbox = \"workspace-write\"\n").unwrap();
        std::fs::write(root.join(".git/info/exclude"), ".baton/\npolicy.toml\n").unwrap();
        let mut registry = Registry::new();
        baton_sop::register(&mut registry, "sop").unwrap();
        Some(Place {
            _parent: parent,
            root,
            sibling,
            registry,
        })
    }

    fn sandbox(&self, network: bool, env: &[&str]) -> Sandbox {
        Sandbox {
            mode: SandboxMode::WorkspaceWrite,
            writable_roots: vec![self.root.clone()],
            network,
            env: env.iter().map(|e| (*e).to_owned()).collect(),
            protected: vec![self.root.join(".baton"), self.root.join("policy.toml")],
        }
    }

    /// `repo_exec` of a shell script in R, under `sandbox`.
    async fn sh(&self, script: &str, sandbox: Option<Sandbox>) -> Result<Value, ToolError> {
        exec(
            &self.registry,
            json!({"repo": self.root, "argv": [script], "shell": true, "timeout_s": 10}),
            sandbox,
        )
        .await
    }
}

async fn exec(
    registry: &Registry,
    args: Value,
    sandbox: Option<Sandbox>,
) -> Result<Value, ToolError> {
    let tool = registry.get("repo_exec").unwrap().clone();
    let principal = Arc::new(Principal::new("tester", [Role::Agent]));
    let mut ctx = ToolContext::new(CancellationToken::new()).with_principal(principal);
    if let Some(sandbox) = sandbox {
        ctx = ctx.with_sandbox(Arc::new(sandbox));
    }
    tool.bind(&args)?.run(ctx).await.map(|out| out.structured)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new())
}

fn ls(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn writes_stay_inside_the_root_and_out_of_its_git() {
    let Some(p) = Place::new("writes_stay_inside_the_root_and_out_of_its_git") else {
        return;
    };
    let sandbox = p.sandbox(false, &[]);
    let inside = p
        .sh("echo ok > inside.txt", Some(sandbox.clone()))
        .await
        .unwrap();
    assert_eq!(inside["exit_code"], 0, "{inside}");
    assert_eq!(
        std::fs::read_to_string(p.root.join("inside.txt")).unwrap(),
        "ok\n"
    );
    let confinement = inside["confinement"].as_str().unwrap();
    let backend = baton_sop::host_confinement().backend.unwrap();
    assert!(
        confinement.starts_with(&format!("{}:", backend.name())),
        "{confinement}"
    );
    assert!(confinement.contains("no network"), "{confinement}");

    let home = PathBuf::from(std::env::var("HOME").unwrap()).join(unique(".baton-escape"));
    let tmp = PathBuf::from("/tmp").join(unique("baton-escape"));
    std::os::unix::fs::symlink(&p.sibling, p.root.join("out")).unwrap();
    let config = std::fs::read(p.root.join(".git/config")).unwrap();
    let sibling = p.sibling.display();
    let cases = [
        format!("echo x > {sibling}/direct"),
        "echo x > ../sibling/relative".to_owned(),
        format!("echo x > {}", home.display()),
        "echo '[core] hooksPath = /tmp' >> .git/config".to_owned(),
        "echo 'touch /pwned' > .git/hooks/pre-commit".to_owned(),
        "echo x > out/through-symlink".to_owned(),
        "(sleep 0.1; echo x > ../sibling/grandchild) & wait $!".to_owned(),
        "setsid -w sh -c 'echo x > ../sibling/new-session'".to_owned(),
        "mount -o remount,rw / 2>&1; echo x > ../sibling/remounted".to_owned(),
        "umount .git 2>&1; echo x > .git/unmounted".to_owned(),
        "mv .git moved-git".to_owned(),
        "ln .git/config hard-link && echo x >> hard-link".to_owned(),
    ];
    // Inside, /tmp is private: the write works there and never reaches the host's.
    let private = p
        .sh(
            &format!("echo x > {}", tmp.display()),
            Some(sandbox.clone()),
        )
        .await
        .unwrap();
    assert_eq!(private["exit_code"], 0, "{private}");
    for script in &cases {
        let out = p.sh(script, Some(sandbox.clone())).await.unwrap();
        assert_ne!(out["exit_code"], 0, "`{script}` ran: {out}");
    }
    assert_eq!(
        ls(&p.sibling),
        Vec::<String>::new(),
        "nothing in the sibling"
    );
    assert!(!home.exists(), "{} written", home.display());
    assert!(!tmp.exists(), "{} written", tmp.display());
    assert_eq!(std::fs::read(p.root.join(".git/config")).unwrap(), config);
    assert!(!p.root.join(".git/hooks/pre-commit").exists());
    // The same scripts in R itself work: the refusals above are the confinement's.
    let ok = p
        .sh(
            "(sleep 0.1; echo x > grandchild) & wait $! && setsid -w sh -c 'echo x > session' \
             && echo x > /tmp/private && cat /tmp/private",
            Some(sandbox),
        )
        .await
        .unwrap();
    assert_eq!(ok["stdout"], "x\n", "{ok}");
    assert!(p.root.join("grandchild").exists() && p.root.join("session").exists());
}

/// What builds and tests do all day still works confined: the standard streams by path,
/// `/dev/null`, a temp file, `/proc/self`, git reading its repository, the caller's own uid.
#[tokio::test]
async fn ordinary_commands_work_confined() {
    let Some(p) = Place::new("ordinary_commands_work_confined") else {
        return;
    };
    let script = "echo out > /dev/stdout && echo err > /dev/stderr && echo gone > /dev/null \
                  && t=$(mktemp) && echo temp > \"$t\" && cat \"$t\" \
                  && test -e /proc/self/exe && git log --format=%s && id -u \
                  && mkdir -p build/out && echo built > build/out/a && mv build/out/a build/b \
                  && cat build/b";
    let out = p.sh(script, Some(p.sandbox(false, &[]))).await.unwrap();
    let uid = rustix::process::geteuid().as_raw();
    assert_eq!(
        (
            out["stdout"].as_str().unwrap(),
            out["stderr"].as_str().unwrap()
        ),
        (format!("out\ntemp\ninit\n{uid}\nbuilt\n").as_str(), "err\n"),
        "{out}"
    );
}

#[tokio::test]
async fn no_network_unless_a_rule_grants_it() {
    let Some(p) = Place::new("no_network_unless_a_rule_grants_it") else {
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!("echo hi > /dev/tcp/127.0.0.1/{port}");
    let argv = json!(["bash", "-c", script]);
    let denied = exec(
        &p.registry,
        json!({"repo": p.root, "argv": argv}),
        Some(p.sandbox(false, &[])),
    )
    .await
    .unwrap();
    assert_ne!(denied["exit_code"], 0, "{denied}");
    let granted = exec(
        &p.registry,
        json!({"repo": p.root, "argv": argv}),
        Some(p.sandbox(true, &[])),
    )
    .await
    .unwrap();
    assert_eq!(granted["exit_code"], 0, "{granted}");
    assert!(
        granted["confinement"]
            .as_str()
            .unwrap()
            .contains("network granted"),
        "{granted}"
    );
    listener.set_nonblocking(true).unwrap();
    let (mut stream, _) = listener.accept().expect("the granted connection arrived");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stream, &mut text).unwrap();
    assert_eq!(text, "hi\n");

    // UDP, and an abstract Unix socket of the host's (no file to hide): neither reachable
    // without the network, both with it.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let name = format!("baton-test-{}", ulid::Ulid::new());
    let address =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            &name,
        )
        .unwrap();
    let abstract_listener = std::os::unix::net::UnixListener::bind_addr(&address).unwrap();
    abstract_listener.set_nonblocking(true).unwrap();
    let script = format!(
        "echo udp > /dev/udp/127.0.0.1/{udp_port}; u=$?; \
         python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect(\"\\0{name}\")' 2>/dev/null; \
         echo \"$u $?\""
    );
    let argv = json!(["bash", "-c", script]);
    let args = json!({"repo": p.root, "argv": argv});
    let denied = exec(&p.registry, args.clone(), Some(p.sandbox(false, &[])))
        .await
        .unwrap();
    // bubblewrap's own network namespace takes the datagram (sent, to nobody there);
    // Landlock's seccomp filter refuses the socket.
    let expected = match baton_sop::host_confinement().backend.unwrap() {
        baton_sop::Backend::Bubblewrap => "0 1\n",
        baton_sop::Backend::Landlock => "1 1\n",
    };
    assert_eq!(denied["stdout"], expected, "{denied}");
    let mut buffer = [0u8; 16];
    assert!(udp.recv(&mut buffer).is_err(), "a datagram arrived");
    assert!(abstract_listener.accept().is_err(), "a connection arrived");
    let granted = exec(&p.registry, args, Some(p.sandbox(true, &[])))
        .await
        .unwrap();
    assert_eq!(udp.recv(&mut buffer).unwrap(), 4);
    // A network rule grants the network, not the host's local services: Landlock keeps
    // abstract sockets scoped; bubblewrap can only cut both off with a network namespace.
    match baton_sop::host_confinement().backend.unwrap() {
        baton_sop::Backend::Landlock => {
            assert_eq!(granted["stdout"], "0 1\n", "{granted}");
            assert!(abstract_listener.accept().is_err(), "a connection arrived");
        }
        baton_sop::Backend::Bubblewrap => {
            assert_eq!(granted["stdout"], "0 0\n", "{granted}");
            assert!(abstract_listener.accept().is_ok(), "no connection arrived");
        }
    }
}

/// The suite again under bubblewrap, in a child process (the backend is chosen once per
/// process), when this host picked the in-process backend.
#[test]
fn every_test_here_passes_under_bubblewrap_too() {
    let host = baton_sop::host_confinement();
    if std::env::var_os("BATON_CONFINE_BACKEND").is_some()
        || host.backend != Some(baton_sop::Backend::Landlock)
        || !baton_test_support::bubblewrap("every_test_here_passes_under_bubblewrap_too")
    {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["suite::confine::", "--test-threads=2"])
        .env("BATON_CONFINE_BACKEND", "bubblewrap")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = stdout
        .lines()
        .filter(|l| l.starts_with("test ") && l.ends_with(" ok"))
        .count();
    assert!(passed >= 8, "{stdout}");
}

/// Run by `a_temp_folder_a_command_covers_is_refused_by_name` in a child process whose
/// TMPDIR is under a folder every command gets its own of; a no-op otherwise.
#[test]
fn tmpdir_child() {
    let Some(tmpdir) = std::env::var_os("BATON_TMPDIR_CHILD") else {
        return;
    };
    let host = baton_sop::host_confinement();
    assert_eq!(host.backend, None, "{host:?}");
    let why = host.unavailable.as_deref().unwrap();
    assert!(
        why.contains(&format!(
            "in the temp folder ({}/baton-confine-",
            tmpdir.display()
        )) && why.contains("set TMPDIR to a folder outside /dev, /proc and /run"),
        "{why}"
    );
    println!("tmpdir-child-checked");
}

/// The in-process backend binds each command's private folders from the temp folder after
/// covering /dev and /run: a TMPDIR under one of them is refused naming it (a plain "no such
/// file" before), never half-applied.
#[test]
fn a_temp_folder_a_command_covers_is_refused_by_name() {
    if baton_sop::host_confinement().backend != Some(baton_sop::Backend::Landlock) {
        return;
    }
    // A folder under /run where this user may make one (as root here; not as others).
    let under_run = tempfile::tempdir_in("/run").ok();
    let dirs = [
        Some(Path::new("/dev/shm")),
        under_run.as_ref().map(|d| d.path()),
    ];
    for tmpdir in dirs.into_iter().flatten() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["suite::confine::tmpdir_child", "--exact", "--nocapture"])
            .env("BATON_TMPDIR_CHILD", tmpdir)
            .env("TMPDIR", tmpdir)
            .env("BATON_CONFINE_BACKEND", "landlock")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("tmpdir-child-checked"),
            "{}: {stdout}\n{}",
            tmpdir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Run by `the_servers_secrets_never_reach_a_command` in a child process whose environment
/// holds the secrets (setting them here would need `unsafe`); a no-op otherwise.
#[tokio::test]
async fn secrets_child() {
    if std::env::var("BATON_CONFINE_CHILD").is_err() {
        return;
    }
    let Some(p) = Place::new("secrets_child") else {
        return;
    };
    let danger = Sandbox {
        mode: SandboxMode::DangerFullAccess,
        ..Sandbox::unconfined()
    };
    for sandbox in [Some(p.sandbox(false, &[])), Some(danger), None] {
        let out = p.sh("env", sandbox.clone()).await.unwrap();
        let env = out["stdout"].as_str().unwrap();
        for secret in ["OPENAI_API_KEY", "BATON_REVIEWER_TOKEN", "sk-test-secret"] {
            assert!(!env.contains(secret), "{sandbox:?}: {env}");
        }
        assert!(env.contains("PATH="), "{env}");
    }
    // Nor through /proc: the server's own environment is not readable from a command.
    let me = std::process::id();
    let out = p
        .sh(
            &format!("cat /proc/{me}/environ"),
            Some(p.sandbox(false, &[])),
        )
        .await
        .unwrap();
    assert_ne!(out["exit_code"], 0, "{out}");
    assert!(
        !out["stdout"].as_str().unwrap().contains("sk-test-secret"),
        "{out}"
    );
    // Only a variable the policy names gets through.
    let named = p
        .sh("env", Some(p.sandbox(false, &["BATON_REVIEWER_TOKEN"])))
        .await
        .unwrap();
    let env = named["stdout"].as_str().unwrap();
    assert!(env.contains("BATON_REVIEWER_TOKEN=rv-token"), "{env}");
    assert!(!env.contains("OPENAI_API_KEY"), "{env}");
    println!("secrets-child-checked");
}

#[test]
fn the_servers_secrets_never_reach_a_command() {
    if !baton_test_support::bubblewrap("the_servers_secrets_never_reach_a_command") {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "suite::confine::secrets_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BATON_CONFINE_CHILD", "1")
        .env("OPENAI_API_KEY", "sk-test-secret")
        .env("BATON_REVIEWER_TOKEN", "rv-token")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("secrets-child-checked"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_timeout_kills_what_the_command_started_even_in_a_new_session() {
    let Some(p) = Place::new("a_timeout_kills_what_the_command_started_even_in_a_new_session")
    else {
        return;
    };
    let started = std::time::Instant::now();
    let error = exec(
        &p.registry,
        json!({"repo": p.root, "argv": ["setsid sh -c 'sleep 2; echo late > late.txt' & sleep 60"],
               "shell": true, "timeout_s": 1}),
        Some(p.sandbox(false, &[])),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, ToolError::Timeout(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !p.root.join("late.txt").exists(),
        "the grandchild outlived the call"
    );
}

/// A caller that goes away (its call dropped mid-command) takes the command and everything it
/// started with it.
#[tokio::test]
async fn a_dropped_call_kills_what_the_command_started() {
    let Some(p) = Place::new("a_dropped_call_kills_what_the_command_started") else {
        return;
    };
    // The last one clears its own parent-death signal and leaves the process group, as a
    // command trying to outlive its call would.
    let call = p.sh(
        "setsid sh -c 'sleep 1.5; echo late > late.txt' & (sleep 1.5; echo late > child.txt) & \
         exec python3 -c 'import ctypes, os, time; ctypes.CDLL(None).prctl(1, 0, 0, 0, 0); \
         os.setsid(); time.sleep(1.5); open(\"escaped.txt\", \"w\").write(\"x\")'",
        Some(p.sandbox(false, &[])),
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), call)
            .await
            .is_err(),
        "the call ended by itself"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !p.root.join("late.txt").exists(),
        "the setsid grandchild outlived the call"
    );
    assert!(
        !p.root.join("child.txt").exists(),
        "a child outlived the call"
    );
    assert!(
        !p.root.join("escaped.txt").exists(),
        "the command itself outlived the call"
    );
}

/// Metadata is writing too: modes, owners and times of files outside the roots stay as they
/// were (Landlock does not cover them; the read-only filesystem does), and the host's disks are
/// not in the command's `/dev`.
#[tokio::test]
async fn metadata_outside_the_root_and_the_hosts_devices_are_out_of_reach() {
    let Some(p) = Place::new("metadata_outside_the_root_and_the_hosts_devices_are_out_of_reach")
    else {
        return;
    };
    let outside = p.sibling.join("outside.txt");
    std::fs::write(&outside, "x").unwrap();
    let before = std::fs::metadata(&outside).unwrap();
    let path = outside.display();
    for script in [
        format!("chmod 4777 {path}"),
        format!("touch -d 2000-01-01 {path}"),
        format!("chown 12345 {path}"),
        format!("python3 -c 'import os; os.setxattr(\"{path}\", \"user.x\", b\"1\")'"),
    ] {
        let out = p.sh(&script, Some(p.sandbox(false, &[]))).await.unwrap();
        assert_ne!(out["exit_code"], 0, "`{script}` ran: {out}");
    }
    let after = std::fs::metadata(&outside).unwrap();
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(
        (after.mode(), after.uid(), after.mtime()),
        (before.mode(), before.uid(), before.mtime())
    );
    let devices = p.sh("ls /dev", Some(p.sandbox(false, &[]))).await.unwrap();
    let listed = devices["stdout"].as_str().unwrap();
    for disk in listed.lines() {
        assert!(
            !["sd", "vd", "nvme", "xvd", "loop", "mem", "kmsg"]
                .iter()
                .any(|prefix| disk.starts_with(prefix)),
            "{disk} in /dev: {listed}"
        );
    }
    assert!(listed.lines().any(|d| d == "null"), "{listed}");
}

/// A repository under the host's /tmp is still a root (shown through the command's private
/// /tmp) with its `.git` read-only; a root holding Baton's own private folders is refused
/// by the in-process backend.
#[tokio::test]
async fn a_root_under_tmp_works_and_keeps_its_git_read_only() {
    let test = "a_root_under_tmp_works_and_keeps_its_git_read_only";
    let Some(p) = Place::in_dir(test, Path::new("/tmp")) else {
        return;
    };
    let config = std::fs::read(p.root.join(".git/config")).unwrap();
    let out = p
        .sh(
            "echo ok > inside.txt; echo x >> .git/config; echo x > .git/hooks/pre-commit; \
             echo x > ../sibling/f; cat inside.txt",
            Some(p.sandbox(false, &[])),
        )
        .await
        .unwrap();
    assert_eq!(out["stdout"], "ok\n", "{out}");
    assert_eq!(std::fs::read(p.root.join(".git/config")).unwrap(), config);
    assert!(!p.root.join(".git/hooks/pre-commit").exists());
    assert_eq!(ls(&p.sibling), Vec::<String>::new());

    let mut whole_tmp = p.sandbox(false, &[]);
    whole_tmp.writable_roots = vec!["/tmp".into()];
    let result = p.sh("echo x > /tmp/whole", Some(whole_tmp)).await;
    match baton_sop::host_confinement().backend.unwrap() {
        baton_sop::Backend::Landlock => {
            let error = result.unwrap_err().to_string();
            assert!(
                error.contains("the writable root /tmp holds or is inside /tmp/"),
                "{error}"
            );
        }
        baton_sop::Backend::Bubblewrap => assert_eq!(result.unwrap()["exit_code"], 0),
    }
    let _ = std::fs::remove_file("/tmp/whole");
}

/// A socket of a local service in the host's /tmp (tmux, ssh-agent, X11, PostgreSQL put them
/// there) is not reachable: the command's /tmp is its own.
#[tokio::test]
async fn a_service_socket_in_the_hosts_tmp_is_out_of_reach() {
    let Some(p) = Place::new("a_service_socket_in_the_hosts_tmp_is_out_of_reach") else {
        return;
    };
    let path = PathBuf::from("/tmp")
        .join(unique("baton-service"))
        .with_extension("sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let script = format!(
        "python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect(\"{}\")'",
        path.display()
    );
    for network in [false, true] {
        let out = p.sh(&script, Some(p.sandbox(network, &[]))).await.unwrap();
        assert_ne!(out["exit_code"], 0, "{out}");
    }
    assert!(listener.accept().is_err(), "a connection arrived");
    std::fs::remove_file(&path).unwrap();
}

/// A command's /tmp and /dev/shm are its own: what one command leaves there (files, a link
/// out, a fifo, a folder locked up) is gone for the next, and the link's target is untouched.
#[tokio::test]
async fn what_a_command_leaves_in_its_tmp_is_gone_for_the_next() {
    let Some(p) = Place::new("what_a_command_leaves_in_its_tmp_is_gone_for_the_next") else {
        return;
    };
    let target = p.sibling.join("target");
    std::fs::write(&target, "kept").unwrap();
    // What it left, by name: the root itself shows in /tmp when the tests run under the host's.
    let script = format!(
        "find /dev/shm -mindepth 1; for f in secret link fifo d; do \
         if [ -e /tmp/$f ] || [ -L /tmp/$f ]; then echo /tmp/$f; fi; done; \
         echo s > /tmp/secret && echo s > /dev/shm/segment \
         && ln -s {} /tmp/link && mkfifo /tmp/fifo && mkdir -p /tmp/d/e && echo x > /tmp/d/e/f \
         && chmod 000 /tmp/d/e /tmp/d",
        target.display()
    );
    for run in 0..3 {
        let out = p.sh(&script, Some(p.sandbox(false, &[]))).await.unwrap();
        assert_eq!(
            (&out["stdout"], &out["exit_code"]),
            (&json!(""), &json!(0)),
            "run {run}: {out}"
        );
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
}

/// A command cannot look into a later command's /tmp: A passes a descriptor of its own /tmp
/// to B, running beside it, over a socket in the root and ends; C then writes a secret in its
/// /tmp while B, still running, lists what the descriptor shows.
#[tokio::test]
async fn a_descriptor_of_one_commands_tmp_shows_nothing_of_the_next() {
    let Some(p) = Place::new("a_descriptor_of_one_commands_tmp_shows_nothing_of_the_next") else {
        return;
    };
    let p = Arc::new(p);
    let wait_for = |name: &str| format!("while [ ! -e {name} ]; do sleep 0.02; done");
    let b = {
        let p = Arc::clone(&p);
        let script = format!(
            "{}; python3 -c 'import array, os, socket, time\n\
             s = socket.socket(socket.AF_UNIX); s.connect(\"a.sock\")\n\
             fds = array.array(\"i\")\n\
             msg, anc, flags, addr = s.recvmsg(1, socket.CMSG_SPACE(4))\n\
             fds.frombytes(anc[0][2][:4])\n\
             open(\"b-ready\", \"w\").close()\n\
             while not os.path.exists(\"c-ready\"): time.sleep(0.02)\n\
             print(sorted(os.listdir(fds[0])))\n\
             open(\"b-done\", \"w\").close()'",
            wait_for("a.sock")
        );
        tokio::spawn(async move { p.sh(&script, Some(p.sandbox(false, &[]))).await })
    };
    let a = p
        .sh(
            &format!(
                "echo a > /tmp/from-a && python3 -c 'import os, socket\n\
                 s = socket.socket(socket.AF_UNIX); s.bind(\"a.sock.new\"); s.listen(1)\n\
                 os.rename(\"a.sock.new\", \"a.sock\")\n\
                 c, _ = s.accept(); fd = os.open(\"/tmp\", os.O_RDONLY)\n\
                 c.sendmsg([b\"x\"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd.to_bytes(4, \"little\"))])' \
                 && {}",
                wait_for("b-ready")
            ),
            Some(p.sandbox(false, &[])),
        )
        .await
        .unwrap();
    assert_eq!(a["exit_code"], 0, "{a}");
    let c = p
        .sh(
            &format!(
                "echo secret > /tmp/secret-of-c && touch c-ready && {}",
                wait_for("b-done")
            ),
            Some(p.sandbox(false, &[])),
        )
        .await
        .unwrap();
    assert_eq!(c["exit_code"], 0, "{c}");
    let b = b.await.unwrap().unwrap();
    assert_eq!(b["exit_code"], 0, "{b}");
    let listed = b["stdout"].as_str().unwrap();
    assert!(!listed.contains("secret-of-c"), "B saw C's /tmp: {listed}");
}

/// A command that exits leaving a process behind gets its answer only once that process is
/// gone: nothing the command started writes after the answer.
#[tokio::test]
async fn nothing_a_command_started_writes_after_its_answer() {
    let Some(p) = Place::new("nothing_a_command_started_writes_after_its_answer") else {
        return;
    };
    // Several times over: the gap this looks for (bwrap's monitor answering before its init has
    // ended the rest) is a few microseconds wide.
    for round in 0..20 {
        let file = p.root.join(format!("behind-{round}.txt"));
        let out = p
            .sh(
                &format!(
                    "(while :; do echo x >> {0}; done) >/dev/null 2>&1 & \
                     (while :; do echo x >> {0}; done) >/dev/null 2>&1 & sleep 0.05; exit 3",
                    file.display()
                ),
                Some(p.sandbox(false, &[])),
            )
            .await
            .unwrap();
        assert_eq!(out["exit_code"], 3, "{out}");
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(size > 0, "the processes behind never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            size,
            "written after the answer, round {round}"
        );
    }
}

/// A command under a root in the host's /tmp renames the folder that leads to its root in its
/// private /tmp and leaves a link to a folder outside in its place: the next command still
/// finds its root, and nothing is made through the link.
#[tokio::test]
async fn a_folder_swapped_for_a_link_in_the_private_tmp_leads_nowhere() {
    let test = "a_folder_swapped_for_a_link_in_the_private_tmp_leads_nowhere";
    let Some(p) = Place::in_dir(test, Path::new("/tmp")) else {
        return;
    };
    let outside = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let parent = p.root.parent().unwrap();
    let swap = p
        .sh(
            &format!(
                "mv {parent} /tmp/moved && ln -s {} {parent}",
                outside.path().display(),
                parent = parent.display()
            ),
            Some(p.sandbox(false, &[])),
        )
        .await
        .unwrap();
    if baton_sop::host_confinement().backend == Some(baton_sop::Backend::Landlock) {
        assert_eq!(swap["exit_code"], 0, "the attack did not happen: {swap}");
    }
    let next = p
        .sh("echo ok > inside.txt", Some(p.sandbox(false, &[])))
        .await
        .unwrap();
    assert_eq!(next["exit_code"], 0, "{next}");
    assert_eq!(
        std::fs::read_to_string(p.root.join("inside.txt")).unwrap(),
        "ok\n"
    );
    assert_eq!(ls(outside.path()), Vec::<String>::new());
}

#[tokio::test]
async fn read_only_never_runs_a_command() {
    let Some(p) = Place::new("read_only_never_runs_a_command") else {
        return;
    };
    let mut sandbox = p.sandbox(false, &[]);
    sandbox.mode = SandboxMode::ReadOnly;
    let error = p.sh("echo x > ran", Some(sandbox)).await.unwrap_err();
    assert_eq!(rule(&error), "sop.sandbox");
    assert!(!p.root.join("ran").exists());
}

/// A repository whose `.git/config` names programs (fsmonitor, a filter, a textconv driver)
/// and whose hooks would write markers: Baton's diff and worktree run none of them.
#[tokio::test]
async fn batons_git_runs_nothing_the_repository_controls() {
    let f = Fixture::new();
    let root = f.root();
    let markers = tempfile::tempdir().unwrap();
    let marker = |name: &str| markers.path().join(name).display().to_string();
    // Attributes first (committed before any driver exists), then the hostile configuration.
    std::fs::write(root.join(".gitattributes"), "*.rs filter=evil diff=evil\n").unwrap();
    git(&root, &["add", ".gitattributes"]);
    git(&root, &["commit", "-q", "-m", "attrs"]);
    let config = [
        ("core.fsmonitor", format!("touch {}", marker("fsmonitor"))),
        (
            "filter.evil.clean",
            format!("touch {}; cat", marker("clean")),
        ),
        (
            "filter.evil.smudge",
            format!("touch {}; cat", marker("smudge")),
        ),
        ("filter.evil.required", "true".to_owned()),
        (
            "diff.evil.textconv",
            format!("touch {}; cat", marker("textconv")),
        ),
    ];
    for (key, value) in &config {
        git(&root, &["config", key, value]);
    }
    for hook in ["post-checkout", "pre-commit", "reference-transaction"] {
        let path = root.join(".git/hooks").join(hook);
        std::fs::write(&path, format!("#!/bin/sh\ntouch {}\n", marker(hook))).unwrap();
        let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&path, executable).unwrap();
    }
    // `git config` runs nothing; from here on any marker is Baton's doing.
    assert_eq!(ls(markers.path()), Vec::<String>::new());
    std::fs::write(root.join("src/lib.rs"), "pub fn hello() { changed() }\n").unwrap();

    f.call(
        "sop_prd_create",
        json!({"feature": "demo", "brief": {"title": "Demo", "problem": "None.",
               "requirements": [{"title": "Say hello", "priority": "low"}]}}),
    )
    .await;
    let tasks = f
        .call("sop_tasks_generate", json!({"feature": "demo"}))
        .await;
    let alias = tasks["created"][0]["alias"].as_str().unwrap().to_owned();
    f.call("sop_plan_create", json!({"feature": "demo"})).await;
    f.call(
        "sop_task_claim",
        json!({"task": alias, "agent": "builder-1"}),
    )
    .await;
    let wt = f
        .call(
            "repo_worktree",
            json!({"action": "create", "task": alias, "agent": "builder-1"}),
        )
        .await;
    let wt = PathBuf::from(wt["path"].as_str().unwrap());
    assert!(
        wt.join("src/lib.rs").exists(),
        "the worktree is checked out"
    );
    std::fs::write(wt.join("src/lib.rs"), "pub fn hello() { worktree() }\n").unwrap();
    let diff = f.call("repo_diff", json!({"task": alias})).await;
    assert!(diff["bytes"].as_u64().unwrap() > 0, "{diff}");
    let main = f.call("repo_diff", json!({})).await;
    assert!(main["bytes"].as_u64().unwrap() > 0, "{main}");
    assert_eq!(
        ls(markers.path()),
        Vec::<String>::new(),
        "a repository program ran"
    );
}

/// Baton's own data (its store socket), config and policy are hidden from commands even when
/// they sit inside a writable root: a command that reached the store or rewrote the policy
/// could grant itself anything.
#[tokio::test]
async fn batons_own_files_are_hidden_from_commands() {
    let Some(p) = Place::new("batons_own_files_are_hidden_from_commands") else {
        return;
    };
    std::fs::create_dir_all(p.root.join(".baton")).unwrap();
    std::fs::write(p.root.join(".baton/secret"), "store bytes").unwrap();
    std::fs::write(
        p.root.join("policy.toml"),
        "sandbox = \"workspace-write\"\n",
    )
    .unwrap();
    let out = p
        .sh(
            "ls -A .baton; cat .baton/secret; cat policy.toml; \
             echo 'approval = \"never\"' >> policy.toml; echo x > .baton/new; echo done",
            Some(p.sandbox(false, &[])),
        )
        .await
        .unwrap();
    let stdout = out["stdout"].as_str().unwrap();
    assert!(stdout.ends_with("done\n"), "{out}");
    assert!(
        !stdout.contains("store bytes") && !stdout.contains("secret"),
        "{out}"
    );
    assert!(!stdout.contains("workspace-write"), "{out}");
    assert_eq!(
        std::fs::read_to_string(p.root.join("policy.toml")).unwrap(),
        "sandbox = \"workspace-write\"\n"
    );
    assert_eq!(ls(&p.root.join(".baton")), ["secret"]);
}

/// One of Baton's files missing inside a writable root (the folder it would be in too) could
/// be created by the command and then loaded as Baton's own: the command is refused, naming
/// the file, and nothing is created. Missing outside the roots, it is no one's to create here.
#[tokio::test]
async fn a_command_that_could_create_a_missing_baton_file_is_refused() {
    let Some(p) = Place::new("a_command_that_could_create_a_missing_baton_file_is_refused") else {
        return;
    };
    std::fs::remove_file(p.root.join("policy.toml")).unwrap();
    let plant = "echo 'sandbox = \"danger-full-access\"' > policy.toml; \
                 mkdir -p conf && echo x > conf/policy.toml";
    let error = p.sh(plant, Some(p.sandbox(false, &[]))).await.unwrap_err();
    let policy = p.root.join("policy.toml");
    assert_eq!(
        error.to_string(),
        format!(
            "denied by rule `sop.sandbox`: Baton's own file {} does not exist, and it would be \
             in the writable root {}: a command could create it, and Baton would load it; \
             create it (an empty file will do for a config), or keep it outside the writable \
             roots; refused",
            policy.display(),
            p.root.display()
        )
    );
    assert!(!policy.exists());

    std::fs::write(&policy, "").unwrap();
    let mut sandbox = p.sandbox(false, &[]);
    sandbox.protected.push(p.root.join("conf/policy.toml"));
    let error = p.sh(plant, Some(sandbox)).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("conf/policy.toml does not exist"),
        "{error}"
    );
    assert!(!p.root.join("conf").exists());

    let mut sandbox = p.sandbox(false, &[]);
    sandbox.protected.push(p.sibling.join("policy.toml"));
    let out = p.sh("echo ran", Some(sandbox)).await.unwrap();
    assert_eq!(out["stdout"], "ran\n");
}

/// One of Baton's files reached through a link in a writable root — the file itself a link,
/// or a linked folder on its way — could have the link replaced by the command's own file,
/// which Baton would then load (the policy at once, through its watcher): refused, and the
/// link left as it was.
#[tokio::test]
async fn a_command_that_could_replace_a_link_to_a_baton_file_is_refused() {
    let Some(p) = Place::new("a_command_that_could_replace_a_link_to_a_baton_file_is_refused")
    else {
        return;
    };
    let real = p.sibling.join("policy.toml");
    std::fs::write(&real, "sandbox = \"workspace-write\"\n").unwrap();
    std::fs::remove_file(p.root.join("policy.toml")).unwrap();
    std::os::unix::fs::symlink(&real, p.root.join("policy.toml")).unwrap();
    let swap = "rm -f policy.toml conf; echo 'sandbox = \"danger-full-access\"' > policy.toml";
    let error = p.sh(swap, Some(p.sandbox(false, &[]))).await.unwrap_err();
    assert!(
        error.to_string().contains(&format!(
            "policy.toml is reached through {}/policy.toml in",
            p.root.display()
        )),
        "{error}"
    );
    assert!(p.root.join("policy.toml").is_symlink());

    std::fs::remove_file(p.root.join("policy.toml")).unwrap();
    std::fs::write(p.root.join("policy.toml"), "").unwrap();
    std::os::unix::fs::symlink(&p.sibling, p.root.join("conf")).unwrap();
    let mut sandbox = p.sandbox(false, &[]);
    sandbox.protected.push(p.root.join("conf/policy.toml"));
    let error = p.sh(swap, Some(sandbox)).await.unwrap_err();
    let link = p.root.join("conf");
    assert!(
        error
            .to_string()
            .contains(&format!("through {} in the writable root", link.display())),
        "{error}"
    );
    assert!(link.is_symlink());

    // Named through a folder of the root its path then leaves (`sub/..`): the command could
    // swap that folder for a link, and `..` would lead elsewhere.
    std::fs::remove_file(&link).unwrap();
    std::fs::create_dir(p.root.join("sub")).unwrap();
    let mut sandbox = p.sandbox(false, &[]);
    sandbox.protected = vec![p.root.join("sub/../policy.toml")];
    let error = p.sh("echo ran", Some(sandbox)).await.unwrap_err();
    let sub = p.root.join("sub");
    assert!(
        error
            .to_string()
            .contains(&format!("through {} in", sub.display())),
        "{error}"
    );
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        "sandbox = \"workspace-write\"\n"
    );
}

/// A command run as root owns the host's password hashes and SSH host keys, and reads them
/// unless they are hidden: they are, as Baton's own files are.
#[tokio::test]
async fn the_hosts_password_hashes_are_hidden_from_commands() {
    let test = "the_hosts_password_hashes_are_hidden_from_commands";
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    if !baton_test_support::needs(test, !shadow.is_empty(), "/etc/shadow is not readable here") {
        return;
    }
    let Some(p) = Place::new(test) else {
        return;
    };
    let out = p
        .sh(
            "cat /etc/shadow /etc/gshadow /etc/ssh/ssh_host_*_key 2>/dev/null; echo done",
            Some(p.sandbox(false, &[])),
        )
        .await
        .unwrap();
    assert_eq!(out["stdout"], "done\n", "{out}");
}

/// A command's /tmp (and, in-process, its /dev/shm) lives in memory, charged to the server:
/// bounded, 2 GiB and 512 MiB.
#[tokio::test]
async fn a_commands_tmp_is_bounded() {
    let Some(p) = Place::new("a_commands_tmp_is_bounded") else {
        return;
    };
    let out = p
        .sh(
            "df -k --output=size /tmp /dev/shm | tail -n +2",
            Some(p.sandbox(false, &[])),
        )
        .await
        .unwrap();
    let sizes: Vec<&str> = out["stdout"].as_str().unwrap().split_whitespace().collect();
    assert_eq!(sizes.first(), Some(&"2097152"), "{out}");
    if baton_sop::host_confinement().backend == Some(baton_sop::Backend::Landlock) {
        assert_eq!(sizes.get(1), Some(&"524288"), "{out}");
    }
}

/// A second root reached through a link inside the first (which a command confined there may
/// have made) is not writable: followed, it would open its target (here the sibling; `/etc`
/// just as well) to every later command.
#[tokio::test]
async fn a_root_reached_through_a_link_inside_another_root_is_not_writable() {
    let Some(p) = Place::new("a_root_reached_through_a_link_inside_another_root_is_not_writable")
    else {
        return;
    };
    std::os::unix::fs::symlink(&p.sibling, p.root.join("second")).unwrap();
    let mut sandbox = p.sandbox(false, &[]);
    sandbox.writable_roots.push(p.root.join("second"));
    let out = p
        .sh("echo x > second/planted; echo x > inside", Some(sandbox))
        .await
        .unwrap();
    assert_eq!(ls(&p.sibling), Vec::<String>::new(), "{out}");
    assert!(p.root.join("inside").exists(), "{out}");
}

/// Under a root in the host's /tmp, the folders leading to Baton's files stay part of the
/// root (writable) and still cannot be renamed.
#[tokio::test]
async fn a_root_under_tmp_keeps_the_folders_around_batons_files_writable() {
    let test = "a_root_under_tmp_keeps_the_folders_around_batons_files_writable";
    let Some(p) = Place::in_dir(test, Path::new("/tmp")) else {
        return;
    };
    std::fs::create_dir_all(p.root.join("conf")).unwrap();
    std::fs::write(p.root.join("conf/policy.toml"), "sandbox = \"read-only\"\n").unwrap();
    let mut sandbox = p.sandbox(false, &[]);
    sandbox.protected.push(p.root.join("conf/policy.toml"));
    let out = p
        .sh(
            "echo x > conf/notes && mv conf moved; echo $?; cat conf/policy.toml",
            Some(sandbox),
        )
        .await
        .unwrap();
    assert_eq!(out["stdout"], "1\n", "{out}");
    assert_eq!(
        std::fs::read_to_string(p.root.join("conf/notes")).unwrap(),
        "x\n"
    );
    assert!(p.root.join("conf/policy.toml").exists());
}

/// A host with Landlock ABI 6 runs commands in-process: only the kernel may be why not (a
/// failure to start would otherwise fall back to bubblewrap unseen).
#[test]
fn the_in_process_backend_runs_where_the_kernel_has_landlock() {
    let host = baton_sop::confinement::probe(baton_sop::Backend::Landlock);
    if let Some(why) = &host.unavailable {
        assert!(why.starts_with("this kernel"), "{why}");
    }
}
