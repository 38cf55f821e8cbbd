//! The deployment files: the systemd unit passes `systemd-analyze verify` and the compose file
//! `docker compose config` (or `docker-compose config`) wherever those tools are installed; on
//! every machine the files keep the properties the operations manual relies on.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn installed(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

#[test]
fn the_systemd_unit_is_hardened_and_passes_systemd_analyze() {
    let unit = read("deploy/fleetd.service");
    for line in [
        "User=fleetd",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "StateDirectory=fleetd",
        "ExecStart=/usr/local/bin/fleetd serve",
        "EnvironmentFile=/etc/fleetd/fleetd.env",
        // room for FLEETD_HTTP_MAX_CONNECTIONS connections, each an open file
        "LimitNOFILE=65536",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    if !installed("systemd-analyze", &["--version"]) {
        eprintln!("systemd-analyze is not installed: the unit's static checks ran, verify did not");
        return;
    }
    // verify wants ExecStart to exist: point it at the binary just built when it is not installed
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fleetd.service");
    let exe = env!("CARGO_BIN_EXE_fleetd");
    let unit = if Path::new("/usr/local/bin/fleetd").exists() {
        unit
    } else {
        unit.replace("ExecStart=/usr/local/bin/fleetd serve", &format!("ExecStart={exe} serve"))
    };
    std::fs::write(&path, unit).expect("write unit");
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify rejects the unit: {stderr}");
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains("fleetd.service")).collect();
    assert!(complaints.is_empty(), "systemd-analyze verify complains: {complaints:?}");
}

#[test]
fn the_compose_file_has_health_checks_and_passes_compose_config() {
    let compose = read("deploy/docker-compose.yaml");
    for needle in [
        "condition: service_healthy",
        "healthcheck:",
        "pg_isready",
        "/readyz",
        "env_file:",
        "pgdata:/var/lib/postgresql/data",
        "fleetd-data:/var/lib/fleetd",
        "nofile:",
        "soft: 65536",
        // the gateway of the fixed subnet is the host's proxy, trusted for X-Forwarded-For
        "gateway: 172.29.80.1",
        "FLEETD_TRUSTED_PROXIES: ${FLEETD_TRUSTED_PROXIES:-172.29.80.1/32}",
    ] {
        assert!(compose.contains(needle), "the compose file lacks {needle}");
    }
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.matches("\nFROM ").count() + usize::from(dockerfile.starts_with("FROM ")) >= 2,
        "multi-stage"
    );
    assert!(dockerfile.contains("\nUSER fleetd\n"), "runs as a non-root user");
    assert!(dockerfile.contains("postgresql-client"), "backups need pg_dump in the image");

    let tool: Option<Vec<&str>> = if installed("docker", &["compose", "version"]) {
        Some(vec!["docker", "compose"])
    } else if installed("docker-compose", &["version"]) {
        Some(vec!["docker-compose"])
    } else {
        None
    };
    let Some(tool) = tool else {
        eprintln!("neither docker compose nor docker-compose is installed: static checks only");
        return;
    };
    // a copy of the deployment directory with an env file made from .env.example
    let dir = tempfile::tempdir().expect("tempdir");
    let deploy = dir.path().join("deploy");
    std::fs::create_dir(&deploy).expect("mkdir");
    std::fs::write(deploy.join("docker-compose.yaml"), &compose).expect("compose");
    std::fs::write(deploy.join(".env"), read(".env.example")).expect("env");
    std::fs::write(dir.path().join("Dockerfile"), &dockerfile).expect("dockerfile");
    let out = Command::new(tool[0])
        .args(&tool[1..])
        .args(["-f", "docker-compose.yaml", "config"])
        .current_dir(&deploy)
        .env("POSTGRES_PASSWORD", "compose-check")
        .output()
        .expect("run compose");
    assert!(
        out.status.success(),
        "{} config rejects the compose file: {}",
        tool.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8_lossy(&out.stdout);
    assert!(rendered.contains("service_healthy"), "{rendered}");
    assert!(rendered.contains("postgres://fleetd:compose-check@db:5432/fleetd"), "{rendered}");
    assert!(rendered.contains("nofile:") && rendered.contains("65536"), "{rendered}");
}
