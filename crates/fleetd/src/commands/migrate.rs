//! `fleetd migrate`: bring the database to this binary's schema and exit.

use fleet_config::Config;

use crate::database::Database;

pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let db = Database::open(&cfg).await?;
    let result = async {
        let applied = db.prepare(&cfg).await?;
        let total = fleet_db::migrate::MIGRATOR.iter().count();
        println!(
            "applied {applied} pending migration(s); the schema is current ({total} migrations)"
        );
        anyhow::Ok(())
    }
    .await;
    let closed = db.close().await;
    result.and(closed)
}
