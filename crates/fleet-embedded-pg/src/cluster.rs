//! Initialising, starting, adopting and stopping the private cluster.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use fleet_config::Secret;
use nix::fcntl::{Flock, FlockArg};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::process::Command;

use crate::binaries;
use crate::os_user::RunAs;
use crate::EmbeddedError;

/// The cluster's superuser; fleetd connects as it.
pub const SUPERUSER: &str = "fleetd";

/// Settings written into a new cluster's postgresql.conf: loopback TCP only (no Unix socket, so
/// no dependency on /var/run/postgresql), UTC, durable writes.
const CLUSTER_CONF: &str = "
# written by fleetd for its embedded cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 100
fsync = on
synchronous_commit = on
timezone = 'UTC'
log_timezone = 'UTC'
";

/// Where and how to run the cluster.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// fleetd's data directory; the cluster lives in its `postgres/` subdirectory.
    pub data_dir: PathBuf,
    /// Use the binaries in this directory instead of looking them up.
    pub bindir: Option<PathBuf>,
}

/// A running private cluster. Call [`EmbeddedPostgres::stop`] on shutdown.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    root: PathBuf,
    bindir: PathBuf,
    port: u16,
    password: Secret<String>,
    run_as: RunAs,
    /// False when the cluster was already running (left by another process) and was adopted.
    started_here: bool,
}

impl Drop for EmbeddedPostgres {
    /// A cluster this process started and did not stop (an error path or a panic) is stopped
    /// here, synchronously, so it does not outlive fleetd.
    fn drop(&mut self) {
        if !self.started_here {
            return;
        }
        let mut c = std::process::Command::new(self.bindir.join("pg_ctl"));
        c.current_dir(&self.root).arg("-D").arg(self.root.join("pgdata"));
        c.args(["-m", "fast", "-w", "-t", "60", "stop"]);
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        if self.run_as.switch {
            std::os::unix::process::CommandExt::uid(&mut c, self.run_as.uid);
            std::os::unix::process::CommandExt::gid(&mut c, self.run_as.gid);
        }
        let _ = c.status();
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let path = path.to_owned();
    move |cause| EmbeddedError::Io { what, path, cause }
}

impl EmbeddedPostgres {
    /// Initialises the cluster if it does not exist yet, then starts it (or adopts it if it is
    /// already running).
    pub async fn start(opts: StartOptions) -> Result<Self, EmbeddedError> {
        let run_as = RunAs::detect()?;
        let root = cluster_root(&opts.data_dir, &run_as)?;
        let pgdata = root.join("pgdata");
        let cluster_major =
            fs::read_to_string(pgdata.join("PG_VERSION")).ok().and_then(|v| v.trim().parse().ok());
        let bindir = binaries::locate(opts.bindir.as_deref(), cluster_major)?;
        if let (Some(cluster), Some(bins)) = (cluster_major, binaries::major_version(&bindir)) {
            if cluster != bins {
                return Err(EmbeddedError::VersionMismatch {
                    dir: pgdata,
                    bindir,
                    cluster,
                    binaries: bins,
                });
            }
        }

        // one fleetd at a time initialises or starts a given cluster
        let lock = lock_file(&root.join("start.lock")).await?;
        let mut pg = Self {
            password: Secret::new(String::new()),
            port: 0,
            root,
            bindir,
            run_as,
            started_here: false,
        };
        if cluster_major.is_none() {
            pg.initdb().await?;
        }
        pg.password = Secret::new(
            fs::read_to_string(pg.password_file())
                .map_err(io(
                    "cannot read the embedded cluster's password file",
                    &pg.password_file(),
                ))?
                .trim()
                .to_owned(),
        );
        if let Some(port) = pg.running_port().await {
            tracing::info!(port, dir = %pg.root.display(), "embedded PostgreSQL already running; reusing it (it stays running when fleetd exits)");
            pg.port = port;
        } else {
            pg.port = pg.choose_port()?;
            pg.pg_ctl_start().await?;
            pg.started_here = true;
            tracing::info!(port = pg.port, dir = %pg.root.display(), "embedded PostgreSQL started");
        }
        drop(lock);
        Ok(pg)
    }

    /// URL of database `db` on the cluster, as its superuser. Contains the password.
    pub fn url(&self, db: &str) -> Secret<String> {
        Secret::new(format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{db}",
            self.password.expose(),
            self.port
        ))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the cluster (`pgdata/`, its log, its password file).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this process started the cluster (and so stops it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the cluster with a fast shutdown (open sessions are disconnected, all committed
    /// data is flushed), if this process started it.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        if !self.started_here {
            return Ok(());
        }
        self.started_here = false; // whatever happens now, Drop must not try again
        self.stop_now().await
    }

    /// Stops the cluster whoever started it.
    pub async fn stop_now(&self) -> Result<(), EmbeddedError> {
        let pgdata = self.root.join("pgdata");
        self.run("stopping PostgreSQL (pg_ctl stop)", "pg_ctl", |c| {
            c.arg("-D").arg(&pgdata).args(["-m", "fast", "-w", "-t", "120", "stop"]);
        })
        .await?;
        tracing::info!(dir = %self.root.display(), "embedded PostgreSQL stopped");
        Ok(())
    }

    fn password_file(&self) -> PathBuf {
        self.root.join("superuser.password")
    }

    async fn initdb(&self) -> Result<(), EmbeddedError> {
        let pgdata = self.root.join("pgdata");
        if pgdata.exists() {
            // a previous initdb died part-way (there is no PG_VERSION): start over
            fs::remove_dir_all(&pgdata)
                .map_err(io("cannot clear the unfinished cluster", &pgdata))?;
        }
        fs::create_dir_all(&pgdata).map_err(io("cannot create", &pgdata))?;
        fs::set_permissions(&pgdata, fs::Permissions::from_mode(0o700))
            .map_err(io("cannot protect", &pgdata))?;
        self.run_as.chown(&pgdata)?;

        let mut raw = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut raw);
        let password: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        // initdb reads the password from a file it can open; remove it right after
        let pwfile = self.root.join("initdb.pw");
        write_private(&pwfile, &password)?;
        self.run_as.chown(&pwfile)?;
        tracing::info!(dir = %pgdata.display(), bindir = %self.bindir.display(), "initialising embedded PostgreSQL");
        let result = self
            .run("initialising the cluster (initdb)", "initdb", |c| {
                c.arg("-D")
                    .arg(&pgdata)
                    .arg("--username")
                    .arg(SUPERUSER)
                    .arg("--pwfile")
                    .arg(&pwfile);
                c.args([
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                ]);
            })
            .await;
        let _ = fs::remove_file(&pwfile);
        result?;
        let conf = pgdata.join("postgresql.conf");
        let mut f =
            OpenOptions::new().append(true).open(&conf).map_err(io("cannot open", &conf))?;
        f.write_all(CLUSTER_CONF.as_bytes()).map_err(io("cannot write", &conf))?;
        // written last: its presence marks a finished initialisation
        write_private(&self.password_file(), &password)?;
        Ok(())
    }

    /// The port of the running postmaster, if the cluster is running.
    async fn running_port(&self) -> Option<u16> {
        let pgdata = self.root.join("pgdata");
        let status = self.command("pg_ctl", |c| {
            c.arg("-D").arg(&pgdata).arg("status");
        });
        // output(), not status(): status() closes the pipes and pg_ctl dies writing to them
        let running = status.ok()?.output().await.ok()?.status.success();
        if !running {
            return None;
        }
        // line 4 of postmaster.pid is the port
        let pid_file = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    /// The port used last time if it is still free, else a new free one; remembered in `port`.
    fn choose_port(&self) -> Result<u16, EmbeddedError> {
        let port_file = self.root.join("port");
        let previous: Option<u16> =
            fs::read_to_string(&port_file).ok().and_then(|p| p.trim().parse().ok());
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        let port = match previous {
            Some(p) if free(p) => p,
            _ => {
                let l = std::net::TcpListener::bind(("127.0.0.1", 0))
                    .map_err(io("cannot find a free port on", Path::new("127.0.0.1")))?;
                l.local_addr()
                    .map_err(io("cannot read the port of", Path::new("127.0.0.1")))?
                    .port()
            }
        };
        fs::write(&port_file, port.to_string()).map_err(io("cannot write", &port_file))?;
        Ok(port)
    }

    async fn pg_ctl_start(&self) -> Result<(), EmbeddedError> {
        let pgdata = self.root.join("pgdata");
        let log = self.root.join("postgres.log");
        // the server log holds query text and connection details: owner-only, like the data
        // directory (pg_ctl appends to an existing file and keeps its mode; an older 0644 log
        // is tightened here)
        if !log.exists() {
            write_private(&log, "")?;
        }
        fs::set_permissions(&log, fs::Permissions::from_mode(0o600))
            .map_err(io("cannot set permissions on", &log))?;
        self.run_as.chown(&log)?;
        let port = self.port;
        let started = self
            .run("starting PostgreSQL (pg_ctl start)", "pg_ctl", |c| {
                c.arg("-D").arg(&pgdata).arg("-l").arg(&log);
                c.args(["-w", "-t", "120", "-o"]).arg(format!("-p {port}")).arg("start");
            })
            .await;
        started.map_err(|e| match e {
            EmbeddedError::Command { what, detail } => EmbeddedError::Command {
                what,
                detail: format!(
                    "{detail}\n--- {} (last lines) ---\n{}",
                    log.display(),
                    tail(&log, 15)
                ),
            },
            other => other,
        })
    }

    fn command(
        &self,
        program: &str,
        build: impl FnOnce(&mut Command),
    ) -> Result<Command, EmbeddedError> {
        let mut c = Command::new(self.bindir.join(program));
        // the cluster's processes must not inherit a working directory they cannot enter
        c.current_dir(&self.root);
        for var in ["PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGOPTIONS"]
        {
            c.env_remove(var);
        }
        if self.run_as.switch {
            c.uid(self.run_as.uid).gid(self.run_as.gid);
        }
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        build(&mut c);
        Ok(c)
    }

    async fn run(
        &self,
        what: &'static str,
        program: &str,
        build: impl FnOnce(&mut Command),
    ) -> Result<(), EmbeddedError> {
        let out = self
            .command(program, build)?
            .output()
            .await
            .map_err(|e| EmbeddedError::Command { what, detail: e.to_string() })?;
        if out.status.success() {
            return Ok(());
        }
        let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        }
        Err(EmbeddedError::Command { what, detail: format!("{detail} ({})", out.status) })
    }
}

/// `data_dir/postgres`, unless fleetd is root and the `postgres` user cannot reach it (a data
/// directory under /root, say): then a directory under /var/lib/fleetd named after the data
/// directory, so the same data directory always gets the same cluster.
fn cluster_root(data_dir: &Path, run_as: &RunAs) -> Result<PathBuf, EmbeddedError> {
    fs::create_dir_all(data_dir).map_err(io("cannot create the data directory", data_dir))?;
    let data_dir = data_dir.canonicalize().map_err(io("cannot resolve", data_dir))?;
    let mut root = data_dir.join("postgres");
    if !run_as.can_traverse(&data_dir) {
        let digest = Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
        let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        root = PathBuf::from(format!("/var/lib/fleetd/embedded-{tag}"));
        tracing::warn!(
            data_dir = %data_dir.display(),
            cluster = %root.display(),
            "the postgres user cannot reach the data directory; the embedded cluster lives elsewhere"
        );
    }
    fs::create_dir_all(&root).map_err(io("cannot create", &root))?;
    // fleetd's user owns the root (the password file stays private); postgres may enter it
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755))
        .map_err(io("cannot set permissions on", &root))?;
    Ok(root)
}

fn write_private(path: &Path, text: &str) -> Result<(), EmbeddedError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io("cannot write", path))?;
    f.write_all(text.as_bytes()).map_err(io("cannot write", path))
}

async fn lock_file(path: &Path) -> Result<Flock<File>, EmbeddedError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io("cannot open", path))?;
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| EmbeddedError::Io {
            what: "cannot lock",
            path,
            cause: std::io::Error::from(errno),
        })
    })
    .await
    .map_err(|e| EmbeddedError::Command { what: "locking the cluster", detail: e.to_string() })?
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
