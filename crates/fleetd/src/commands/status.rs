//! `fleetd db status`: migrations, partitions and row counts.

use fleet_config::Config;

use crate::database::Database;

pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let db = Database::open(&cfg).await?;
    let result = fleet_db::status::collect(&db.pool).await;
    let closed = db.close().await;
    print!("{}", result?);
    closed
}
