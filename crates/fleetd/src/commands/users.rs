//! `fleetd user add` and `fleetd token create`: the first admin and integration tokens from
//! the command line, through the same account code as the API's `/users` and `/tokens`.

use std::io::{IsTerminal, Read};

use anyhow::{anyhow, bail, Context};
use fleet_accounts::users::{self, NewUser};
use fleet_accounts::{password, token};
use fleet_config::Config;

use crate::cli::{TokenCreateArgs, UserAddArgs};
use crate::database::Database;

pub async fn add(cfg: Config, args: UserAddArgs) -> anyhow::Result<()> {
    let errors = users::check_new(&args.username, &args.display_name, "");
    if let Some(e) = errors.iter().find(|e| e.field != "password") {
        bail!("{}: {}", e.field, e.message);
    }
    let password = read_password(&args.username, args.password_stdin)?;
    with_database(&cfg, |pool| async move {
        let new = NewUser {
            username: args.username,
            display_name: args.display_name,
            role: args.role,
            password,
        };
        let user = users::create(&pool, new).await?;
        println!("user {} created with role {} (id {})", user.username, user.role, user.user_id);
        Ok(())
    })
    .await
}

pub async fn create_token(cfg: Config, args: TokenCreateArgs) -> anyhow::Result<()> {
    let name = args.name.trim().to_owned();
    token::check_name(&name).map_err(|m| anyhow!("--name: {m}"))?;
    with_database(&cfg, |pool| async move {
        let user_id = users::id_of(&pool, &args.user).await?.ok_or_else(|| {
            anyhow!("there is no user {:?} (create one with `fleetd user add`)", args.user)
        })?;
        let created = token::create(&pool, user_id, &name, None).await?;
        println!("{}", created.token);
        eprintln!(
            "token {} ({}…) acts as {}; it is shown only now, store it safely",
            created.info.token_id, created.info.token_prefix, created.info.username
        );
        Ok(())
    })
    .await
}

/// Opens and prepares the database, runs `work`, and closes the database whatever happened.
async fn with_database<F, Fut>(cfg: &Config, work: F) -> anyhow::Result<()>
where
    F: FnOnce(fleet_db::PgPool) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let db = Database::open(cfg).await?;
    let result = match db.prepare(cfg).await {
        Ok(_) => work(db.pool.clone()).await,
        Err(e) => Err(e),
    };
    let closed = db.close().await;
    result.and(closed)
}

/// The new user's password: from standard input with `--password-stdin`, else prompted for
/// twice on the terminal without echo.
fn read_password(username: &str, from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from standard input")?;
        let line = text.lines().next().unwrap_or_default().to_owned();
        if line.is_empty() {
            bail!("--password-stdin: standard input holds no password");
        }
        line
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {username}: "))?;
        password::check_policy(&first).map_err(|m| anyhow!("password: {m}"))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        bail!("standard input is not a terminal, so there is no one to ask for the password: give it on standard input with --password-stdin");
    };
    password::check_policy(&password).map_err(|m| anyhow!("password: {m}"))?;
    Ok(password)
}
