//! `fleetd migrate`: bring the database to this binary's schema and exit.

use fleet_config::Config;

use crate::database::Database;

pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let db = Database::open(&cfg).await?;
    let result = async {
        let pending = fleet_db::migrate::status(&db.pool).await?.pending.len();
        db.prepare(&cfg).await?;
        let total = fleet_db::migrate::MIGRATOR.iter().count();
        println!(
            "applied {pending} pending migration(s); the schema is current ({total} migrations)"
        );
        anyhow::Ok(())
    }
    .await;
    let closed = db.close().await;
    result.and(closed)
}
