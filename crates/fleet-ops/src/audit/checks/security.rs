//! Write privileges of read-only and other login roles, passwords, fleetd's own role.

use md5::{Digest, Md5};
use sqlx::PgPool;

use crate::audit::{Check, Status};
use crate::{Context, OpsError};

/// Passwords tried against every login role: the defaults of images, guides and this project.
const GUESSABLE: [&str; 12] = [
    "",
    "postgres",
    "password",
    "fleetd",
    "fleet",
    "fleet_ro",
    "changeme",
    "CHANGE-ME",
    "admin",
    "secret",
    "123456",
    "demo-password",
];

pub(super) async fn read_only_roles(pool: &PgPool) -> Result<Check, OpsError> {
    // the analyst role, and every login role that is neither fleetd's own nor a superuser
    // (superusers are checked by `superuser` and `passwords`)
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "with roles as (
             select oid, rolname from pg_roles
             where rolname = 'fleet_ro'
                or (rolcanlogin and not rolsuper and rolname <> current_user)
         )
         select r.rolname::text, 'table ' || format('%I.%I', n.nspname, c.relname),
                concat_ws(', ',
                    case when has_table_privilege(r.oid, c.oid, 'INSERT') then 'INSERT' end,
                    case when has_table_privilege(r.oid, c.oid, 'UPDATE') then 'UPDATE' end,
                    case when has_table_privilege(r.oid, c.oid, 'DELETE') then 'DELETE' end,
                    case when has_table_privilege(r.oid, c.oid, 'TRUNCATE') then 'TRUNCATE' end)
         from roles r
         cross join pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('fleet', 'reporting', 'public') and c.relkind in ('r', 'p', 'v', 'm')
           and has_table_privilege(r.oid, c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE')
         union all
         select r.rolname::text, 'schema ' || quote_ident(s), 'CREATE'
         from roles r cross join unnest(array['fleet', 'reporting', 'public']) s
         where has_schema_privilege(r.oid, s, 'CREATE')
         order by 1, 2",
    )
    .fetch_all(pool)
    .await
    .context("reading privileges")?;
    if rows.is_empty() {
        return Ok(Check::new(
            "read_only_roles",
            Status::Ok,
            "fleet_ro and the other login roles have no write privilege",
        ));
    }
    let roles: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let details = rows.iter().map(|(r, obj, p)| format!("{r} may {p} on {obj}")).collect();
    Ok(Check::new(
        "read_only_roles",
        Status::Fail,
        format!("write privileges held by {}", roles.into_iter().collect::<Vec<_>>().join(", ")),
    )
    .with(details))
}

fn md5_verifier(password: &str, role: &str) -> String {
    let digest = Md5::digest(format!("{password}{role}").as_bytes());
    format!("md5{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub(super) async fn passwords(pool: &PgPool) -> Result<Check, OpsError> {
    let rows: Result<Vec<(String, Option<String>)>, sqlx::Error> = sqlx::query_as(
        "select rolname::text, rolpassword from pg_authid where rolcanlogin order by 1",
    )
    .fetch_all(pool)
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(_) => {
            return Ok(Check::new(
                "passwords",
                Status::Warn,
                "not checked: reading password verifiers (pg_authid) needs a superuser; run the audit as one to check",
            ))
        }
    };
    let mut guessable = Vec::new();
    let mut without = Vec::new();
    for (role, verifier) in &rows {
        let Some(v) = verifier else {
            without.push(role.clone());
            continue;
        };
        let own = role.as_str();
        let hit = GUESSABLE.iter().copied().chain(std::iter::once(own)).find(|pw| {
            if v.starts_with("md5") {
                *v == md5_verifier(pw, role)
            } else {
                fleet_db::roles::scram_matches(v, pw)
            }
        });
        if let Some(pw) = hit {
            let shown = if pw.is_empty() {
                "an empty password".to_owned()
            } else {
                format!("the default password {pw:?}")
            };
            guessable.push(format!("login role {role} has {shown}"));
        }
    }
    if !guessable.is_empty() {
        return Ok(Check::new(
            "passwords",
            Status::Fail,
            format!("{} login roles have a default or empty password", guessable.len()),
        )
        .with(guessable));
    }
    if !without.is_empty() {
        return Ok(Check::new(
            "passwords",
            Status::Warn,
            format!(
                "{} of {} login roles have no password: make sure pg_hba.conf admits them by peer or certificate, never trust",
                without.len(),
                rows.len()
            ),
        )
        .with(without.iter().map(|r| format!("{r}: no password")).collect()));
    }
    Ok(Check::new(
        "passwords",
        Status::Ok,
        format!("{} login roles, none with a default or empty password", rows.len()),
    ))
}

pub(super) async fn superuser(pool: &PgPool) -> Result<Check, OpsError> {
    let (me, sup): (String, bool) = sqlx::query_as(
        "select current_user::text, rolsuper from pg_roles where rolname = current_user",
    )
    .fetch_one(pool)
    .await
    .context("reading fleetd's role")?;
    Ok(if sup {
        Check::new(
            "superuser",
            Status::Warn,
            format!("fleetd connects as {me}, a superuser: give it a role that owns its database and nothing more (least privilege)"),
        )
    } else {
        Check::new("superuser", Status::Ok, format!("fleetd connects as {me}, not a superuser"))
    })
}

/// The analyst role's limits (set at every fleetd start) and whether fleetd may enforce the
/// statement timeout an analyst session can lift: without them one ad-hoc query can hold the
/// server's memory and connections.
pub(super) async fn analyst_limits(pool: &PgPool) -> Result<Check, OpsError> {
    let role: Option<(i32, Option<Vec<String>>)> = sqlx::query_as(
        "select r.rolconnlimit, s.setconfig
         from pg_roles r
         left join pg_db_role_setting s on s.setrole = r.oid and s.setdatabase = 0
         where r.rolname = 'fleet_ro'",
    )
    .fetch_optional(pool)
    .await
    .context("reading the analyst role's settings")?;
    let Some((connection_limit, config)) = role else {
        return Ok(Check::new("analyst_limits", Status::Warn, "there is no fleet_ro role"));
    };
    let config = config.unwrap_or_default();
    let setting = |name: &str| {
        config.iter().find_map(|c| c.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
    };
    let mut warns = Vec::new();
    if connection_limit < 0 {
        warns.push("fleet_ro has no connection limit (FLEETD_ANALYST_CONNECTION_LIMIT)".to_owned());
    }
    for name in ["statement_timeout", "idle_in_transaction_session_timeout", "work_mem"] {
        if setting(name).is_none_or(|v| v == "0") {
            warns.push(format!("fleet_ro has no {name} default"));
        }
    }
    let rights = fleet_db::analyst_limits::watchdog_rights(pool).await?;
    if !(rights.see && rights.cancel) {
        warns.push(
            "fleetd's role cannot cancel fleet_ro queries that lift their timeout (grant it pg_read_all_stats and pg_signal_backend)"
                .to_owned(),
        );
    }
    let summary = format!(
        "fleet_ro: connection limit {}, statement_timeout {}, work_mem {}",
        if connection_limit < 0 { "none".to_owned() } else { connection_limit.to_string() },
        setting("statement_timeout").unwrap_or_else(|| "none".to_owned()),
        setting("work_mem").unwrap_or_else(|| "default".to_owned()),
    );
    Ok(Check::from_findings("analyst_limits", summary, Vec::new(), warns))
}
