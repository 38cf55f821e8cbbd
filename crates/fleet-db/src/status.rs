//! The report behind `fleetd db status`: server, migrations, partitions and row counts.

use std::fmt;

use sqlx::PgPool;

use crate::migrate::{self, MigrationStatus};
use crate::partitions::{self, PartitionInfo};
use crate::{Context, DbError};

/// Row count of one table: exact for small tables, the planner's estimate for big ones.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRows {
    pub table: String,
    pub rows: i64,
    pub estimated: bool,
    pub size_bytes: i64,
}

/// Everything `fleetd db status` prints.
#[derive(Debug, Clone)]
pub struct DbStatus {
    pub server_version: String,
    pub database: String,
    pub migrations: MigrationStatus,
    pub partitions: Vec<PartitionInfo>,
    pub tables: Vec<TableRows>,
}

/// Above this many (estimated) rows a table is not counted exactly.
const EXACT_COUNT_LIMIT: f32 = 200_000.0;

pub async fn collect(pool: &PgPool) -> Result<DbStatus, DbError> {
    let (server_version, database): (String, String) =
        sqlx::query_as("select current_setting('server_version'), current_database()::text")
            .fetch_one(pool)
            .await
            .context("reading the server version")?;
    let migrations = migrate::status(pool).await?;
    let has_schema: bool = sqlx::query_scalar("select to_regclass('fleet.positions') is not null")
        .fetch_one(pool)
        .await
        .context("checking for the fleet schema")?;
    if !has_schema {
        return Ok(DbStatus {
            server_version,
            database,
            migrations,
            partitions: vec![],
            tables: vec![],
        });
    }
    let partitions = partitions::list(pool).await?;
    // base tables of schema fleet; partitions are listed separately, the parent gets the total
    let rels: Vec<(String, f32, i64)> = sqlx::query_as(
        "select format('%I.%I', n.nspname, c.relname), c.reltuples, pg_total_relation_size(c.oid)
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'fleet' and c.relkind in ('r', 'p') and not c.relispartition
         order by 1",
    )
    .fetch_all(pool)
    .await
    .context("listing tables")?;
    let mut tables = Vec::with_capacity(rels.len());
    for (table, reltuples, size) in rels {
        let estimate =
            if table == "fleet.positions" { partition_estimate(pool).await? } else { reltuples };
        let (rows, estimated) = if estimate >= EXACT_COUNT_LIMIT {
            (estimate as i64, true)
        } else {
            let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
                .fetch_one(pool)
                .await
                .context("counting rows")?;
            (n, false)
        };
        let size_bytes = if table == "fleet.positions" {
            partitions.iter().map(|p| p.size_bytes).sum()
        } else {
            size
        };
        tables.push(TableRows { table, rows, estimated, size_bytes });
    }
    Ok(DbStatus { server_version, database, migrations, partitions, tables })
}

async fn partition_estimate(pool: &PgPool) -> Result<f32, DbError> {
    sqlx::query_scalar(
        "select coalesce(sum(greatest(c.reltuples, 0)), 0)::real
         from pg_inherits i join pg_class c on c.oid = i.inhrelid
         where i.inhparent = 'fleet.positions'::regclass",
    )
    .fetch_one(pool)
    .await
    .context("estimating positions rows")
}

/// `1536` → `1.5 kB`: sizes as `db status` and `fleetd audit` print them.
pub fn human_bytes(b: i64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

impl fmt::Display for DbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "database {} on PostgreSQL {}", self.database, self.server_version)?;
        let m = &self.migrations;
        let state = if m.is_current() { "current" } else { "NOT current" };
        writeln!(
            f,
            "\nmigrations: {} applied, {} pending ({state})",
            m.applied.len(),
            m.pending.len()
        )?;
        for a in &m.applied {
            let flag = if m.mismatched.contains(&a.version) {
                "  CHANGED OR FAILED"
            } else if m.unknown.contains(&a.version) {
                "  unknown to this fleetd (newer?)"
            } else {
                ""
            };
            writeln!(
                f,
                "  applied  {:04} {:<28} {}{flag}",
                a.version,
                a.description,
                a.installed_on.format("%Y-%m-%d %H:%M:%S UTC")
            )?;
        }
        for (v, d) in &m.pending {
            writeln!(f, "  pending  {v:04} {d}")?;
        }
        writeln!(f, "\npositions partitions: {}", self.partitions.len())?;
        for p in &self.partitions {
            let range = match (p.from, p.to) {
                (Some(a), Some(b)) => {
                    format!("{} .. {}", a.format("%Y-%m-%d"), b.format("%Y-%m-%d"))
                }
                _ => "default (months without a partition)".to_owned(),
            };
            writeln!(f, "  {:<22} {:<40} {:>10}", p.name, range, human_bytes(p.size_bytes))?;
        }
        writeln!(f, "\ntables:")?;
        for t in &self.tables {
            let rows = if t.estimated { format!("~{}", t.rows) } else { t.rows.to_string() };
            writeln!(f, "  {:<28} {:>12} rows {:>10}", t.table, rows, human_bytes(t.size_bytes))?;
        }
        Ok(())
    }
}
