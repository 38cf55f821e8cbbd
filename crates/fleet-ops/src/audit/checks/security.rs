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
