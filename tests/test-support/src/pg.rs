//! PostgreSQL for tests: a database of its own per test in the test command's shared cluster
//! (`BATON_TEST_PG`), and clusters a test owns — to stop, restart or kill — from Debian's
//! binaries. Never a mock: the store's second backend is tested on the real server.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set by `./scripts/test.sh`: the URL of the shared throwaway cluster's `postgres` database.
const SHARED: &str = "BATON_TEST_PG";
/// Set by `./scripts/test.sh` for the second pass of the suites that run on both backends.
const BACKEND: &str = "BATON_TEST_STORE";

/// Debian's PostgreSQL binaries (the newest installed version), if any.
pub fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Whether PostgreSQL can be had here — see [`crate::needs`].
pub fn postgres(test: &str) -> bool {
    crate::needs(
        test,
        pg_bin().is_some(),
        "PostgreSQL is not installed; ./scripts/test.sh installs it (Debian package postgresql)",
    )
}

/// Whether this pass runs the suites on PostgreSQL (`BATON_TEST_STORE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var(BACKEND).is_ok_and(|v| v == "postgres")
}

/// The store URL a test's Baton should use: `None` (sled in its data folder) normally; on the
/// PostgreSQL pass, a new empty database in the shared cluster.
pub fn store_url() -> Option<String> {
    if !on_postgres() {
        return None;
    }
    let admin = std::env::var(SHARED).unwrap_or_else(|_| {
        panic!("{BACKEND}=postgres needs {SHARED}: ./scripts/test.sh sets both")
    });
    Some(create_database(&admin))
}

/// A new database for a test that needs PostgreSQL on either pass: in the test command's
/// shared cluster when it started one, else in a cluster of the test's own (returned with it:
/// it stops when dropped). `None` when PostgreSQL is not installed (see [`crate::needs`]).
pub fn pg_database(test: &str) -> Option<(Option<PgCluster>, String)> {
    if let Ok(admin) = std::env::var(SHARED) {
        return Some((None, create_database(&admin)));
    }
    if !postgres(test) {
        return None;
    }
    let cluster = PgCluster::start();
    let url = cluster.database();
    Some((Some(cluster), url))
}

/// A new empty database next to the one `admin_url` names; its URL.
pub fn create_database(admin_url: &str) -> String {
    let name = format!("t_{}", baton_runs::new_id().to_ascii_lowercase());
    psql(admin_url, &format!("CREATE DATABASE {name}"));
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// Run `sql` on the database at `url` with `psql`; its output, trimmed.
pub fn psql(url: &str, sql: &str) -> String {
    let bin = pg_bin().expect("PostgreSQL is installed");
    let output = Command::new(bin.join("psql"))
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A PostgreSQL cluster a test owns, in a temporary folder, on its own port: started by
/// `initdb` and `pg_ctl` as an unprivileged user (PostgreSQL refuses to run as root; the test
/// command runs as root in CI), stopped when dropped.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The user the server runs as, when this process is root.
    run_as: Option<String>,
}

impl PgCluster {
    /// `initdb` and start a cluster; its superuser is `baton`, trusted on the loopback.
    pub fn start() -> PgCluster {
        let bin = pg_bin().expect("PostgreSQL is installed");
        let dir = tempfile::Builder::new()
            .prefix("baton-pg")
            .tempdir()
            .unwrap();
        let run_as = rustix::process::geteuid().is_root().then(|| {
            let user = "postgres";
            let uid: u32 = String::from_utf8(
                Command::new("id")
                    .args(["-u", user])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
            .trim()
            .parse()
            .expect("the postgres user exists (Debian's package creates it)");
            std::os::unix::fs::chown(dir.path(), Some(uid), None).unwrap();
            user.to_owned()
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PgCluster {
            dir,
            bin,
            port,
            run_as,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "baton",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.start_server();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        let output = command.args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://baton@127.0.0.1:{}/{name}", self.port)
    }

    /// A new empty database; its URL.
    pub fn database(&self) -> String {
        create_database(&self.url("postgres"))
    }

    /// Stop the server (fast: open connections are closed).
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Start it again after [`PgCluster::stop`], on the same port.
    pub fn restart(&self) {
        self.start_server();
    }

    /// The folder the cluster lives in.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = match &self.run_as {
            Some(user) => Command::new("runuser")
                .args(["-u", user, "--"])
                .arg(&program)
                .args(args)
                .output(),
            None => Command::new(&program).args(args).output(),
        };
    }
}
