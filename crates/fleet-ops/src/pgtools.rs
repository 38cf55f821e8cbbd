//! Running the machine's PostgreSQL client tools (pg_dump, pg_restore) against a database
//! given by URL.
//!
//! Connection details go to the tools through the libpq environment (PGHOST, PGPORT, PGUSER,
//! PGPASSWORD, PGDATABASE, PGSSLMODE), never on the command line, where the password would be
//! visible to every user of the machine in the process list.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use url::Url;

use crate::OpsError;

/// A database as the client tools see it.
#[derive(Clone)]
pub struct PgTarget {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    pub database: String,
    sslmode: Option<String>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

impl PgTarget {
    /// Reads a `postgres://user:password@host:port/database?sslmode=…&host=/socket/dir` URL.
    pub fn from_url(url: &str) -> Result<Self, OpsError> {
        let u =
            Url::parse(url).map_err(|e| OpsError::Input(format!("invalid database URL: {e}")))?;
        if !matches!(u.scheme(), "postgres" | "postgresql") {
            return Err(OpsError::Input("the database URL must start with postgres://".to_owned()));
        }
        let mut host = u.host_str().filter(|h| !h.is_empty()).map(str::to_owned);
        let mut sslmode = None;
        for (k, v) in u.query_pairs() {
            match k.as_ref() {
                "host" => host = Some(v.into_owned()),
                "sslmode" => sslmode = Some(v.into_owned()),
                _ => {}
            }
        }
        let database = decode(u.path().trim_start_matches('/'));
        let user = Some(decode(u.username())).filter(|s| !s.is_empty());
        let database =
            if database.is_empty() { user.clone().unwrap_or_default() } else { database };
        Ok(Self {
            host,
            port: u.port(),
            user,
            password: u.password().map(decode),
            database,
            sslmode,
        })
    }

    /// The same server, another database.
    pub fn with_database(&self, database: &str) -> Self {
        Self { database: database.to_owned(), ..self.clone() }
    }

    /// A URL for sqlx to the same server and `database` (the password included).
    pub fn url_for(&self, database: &str) -> String {
        let mut u = Url::parse("postgres://localhost/").unwrap_or_else(|_| unreachable!());
        let socket = self.host.as_deref().filter(|h| h.starts_with('/'));
        if let Some(h) = self.host.as_deref().filter(|h| !h.starts_with('/')) {
            let _ = u.set_host(Some(h));
        }
        let _ = u.set_port(self.port);
        if let Some(user) = &self.user {
            let _ = u.set_username(user);
        }
        if let Some(pw) = &self.password {
            let _ = u.set_password(Some(pw));
        }
        u.set_path(&format!("/{database}"));
        {
            let mut q = u.query_pairs_mut();
            if let Some(s) = socket {
                q.append_pair("host", s);
            }
            if let Some(m) = &self.sslmode {
                q.append_pair("sslmode", m);
            }
        }
        if u.query() == Some("") {
            u.set_query(None);
        }
        u.to_string()
    }

    fn apply(&self, cmd: &mut Command) {
        for var in ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE"] {
            cmd.env_remove(var);
        }
        if let Some(h) = &self.host {
            cmd.env("PGHOST", h);
        }
        if let Some(p) = self.port {
            cmd.env("PGPORT", p.to_string());
        }
        if let Some(u) = &self.user {
            cmd.env("PGUSER", u);
        }
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        if let Some(m) = &self.sslmode {
            cmd.env("PGSSLMODE", m);
        }
        cmd.env("PGDATABASE", &self.database);
    }
}

/// Where the client tools are.
#[derive(Debug, Clone)]
pub struct PgTools {
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
}

impl PgTools {
    /// Finds pg_dump and pg_restore (see [`fleet_embedded_pg::locate_client_tool`]), checking
    /// they are at least as new as the server (`server_major`), since an older pg_dump refuses
    /// to dump a newer server.
    pub fn locate(bindir: Option<&Path>, server_major: Option<u32>) -> Result<Self, OpsError> {
        let find = |program: &'static str| {
            fleet_embedded_pg::locate_client_tool(bindir, program)
                .ok_or(OpsError::MissingTool { program, bindir: bindir.map(Path::to_owned) })
        };
        let tools = Self { pg_dump: find("pg_dump")?, pg_restore: find("pg_restore")? };
        if let (Some(server), Some(tool)) =
            (server_major, fleet_embedded_pg::tool_major_version(&tools.pg_dump))
        {
            if tool < server {
                return Err(OpsError::Input(format!(
                    "{} is PostgreSQL {tool} but the server is PostgreSQL {server}: install the \
                     client tools of version {server} or newer (postgresql-client-{server}) or set \
                     FLEETD_PG_BINDIR",
                    tools.pg_dump.display()
                )));
            }
        }
        Ok(tools)
    }
}

/// Runs `program args` against `target`, passing each line the tool prints on stderr (its
/// --verbose progress) to `progress`. Fails with the tool's last lines of output.
pub async fn run(
    program: &Path,
    args: &[&str],
    target: &PgTarget,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), OpsError> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.kill_on_drop(true);
    target.apply(&mut cmd);
    let name = program
        .file_name()
        .map_or_else(|| program.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut child =
        cmd.spawn().map_err(|e| OpsError::Tool { program: name.clone(), detail: e.to_string() })?;
    let mut tail: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            progress(&line);
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| OpsError::Tool { program: name.clone(), detail: e.to_string() })?;
    if status.success() {
        Ok(())
    } else {
        // the verbose lines are progress; the errors are what matters
        let errors: Vec<&String> =
            tail.iter().filter(|l| l.contains("error") || l.contains("FATAL")).collect();
        let shown = if errors.is_empty() { tail.iter().collect() } else { errors };
        Err(OpsError::Tool {
            program: name,
            detail: format!(
                "{status}: {}",
                shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_becomes_libpq_settings_and_back() {
        let t =
            PgTarget::from_url("postgres://fleet:p%40ss@db.example:6432/fleetd?sslmode=require")
                .expect("url");
        assert_eq!(t.host.as_deref(), Some("db.example"));
        assert_eq!(t.port, Some(6432));
        assert_eq!(t.user.as_deref(), Some("fleet"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert_eq!(t.database, "fleetd");
        assert_eq!(t.sslmode.as_deref(), Some("require"));
        assert_eq!(
            t.url_for("scratch"),
            "postgres://fleet:p%40ss@db.example:6432/scratch?sslmode=require"
        );
        assert!(!format!("{t:?}").contains("p@ss"), "the password never prints");
    }

    #[test]
    fn a_socket_directory_is_kept_as_the_host() {
        let t =
            PgTarget::from_url("postgresql://postgres@localhost/fleetd?host=/var/run/postgresql")
                .expect("url");
        assert_eq!(t.host.as_deref(), Some("/var/run/postgresql"));
        assert_eq!(
            t.url_for("x"),
            "postgres://postgres@localhost/x?host=%2Fvar%2Frun%2Fpostgresql"
        );
        assert!(PgTarget::from_url("mysql://x/y").is_err());
        assert!(PgTarget::from_url("not a url").is_err());
    }
}
