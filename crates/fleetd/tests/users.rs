//! `fleetd user add` and `fleetd token create` against a real database: the user can log in,
//! the token authenticates, and mistakes fail with one clear message.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use fleet_testkit::TestDb;
use support::fleetd;

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Runs fleetd against `db` with `stdin` as its standard input (`None`: no input at all).
fn run(db: &TestDb, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c: Command = fleetd();
    c.args(args).args(["--database-url", db.url()]);
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    if let Some(input) = stdin {
        // fleetd may refuse its arguments and exit before reading its input: a broken pipe
        // then is expected, and what it printed is what the test looks at
        let written = child.stdin.take().expect("stdin").write_all(input.as_bytes());
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing fleetd's stdin: {e}");
        }
    }
    child.wait_with_output().expect("wait")
}

fn last_error_line(out: &Output) -> String {
    text(&out.stderr).lines().last().unwrap_or_default().to_owned()
}

/// Serves the API over `db` in this process; returns its base URL.
async fn api(db: &TestDb) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/api/v1", listener.local_addr().expect("addr"));
    let app = fleet_http::router(fleet_http::AppState::new(db.pool.clone()));
    tokio::spawn(fleet_http::serve(listener, app, std::future::pending()));
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_with_password_stdin_creates_a_user_who_can_log_in() {
    let db = TestDb::migrated().await;
    let out = run(
        &db,
        &["user", "add", "Alice", "--role", "admin", "--password-stdin"],
        Some("correct horse\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("user Alice created with role admin (id "),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !text(&out.stdout).contains("correct horse")
            && !text(&out.stderr).contains("correct horse")
    );

    let (role, hash): (String, String) =
        sqlx::query_as("select role, password_hash from fleet.users where username = 'Alice'")
            .fetch_one(&db.pool)
            .await
            .expect("user row");
    assert_eq!(role, "admin");
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    let url = api(&db).await;
    let login = reqwest::Client::new()
        .post(format!("{url}/auth/login"))
        .json(&serde_json::json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status().as_u16(), 200, "the newline ends the password");

    let again = run(
        &db,
        &["user", "add", "ALICE", "--role", "viewer", "--password-stdin"],
        Some("another one\n"),
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        last_error_line(&again).contains("the username \"ALICE\" is taken"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn user_add_refuses_to_guess_a_password_or_a_role() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = rt.block_on(TestDb::migrated());
    // no terminal and no --password-stdin: nobody to ask
    let out = run(&db, &["user", "add", "bob", "--role", "viewer"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = last_error_line(&out);
    assert!(err.contains("--password-stdin") && err.contains("not a terminal"), "{err}");

    let out =
        run(&db, &["user", "add", "bob", "--role", "viewer", "--password-stdin"], Some("short\n"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(last_error_line(&out), "fleetd: password: at least 8 characters");

    let out = run(&db, &["user", "add", "bob", "--role", "viewer", "--password-stdin"], Some(""));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        last_error_line(&out).contains("standard input holds no password"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        &db,
        &["user", "add", "bob", "--role", "boss", "--password-stdin"],
        Some("long enough\n"),
    );
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        text(&out.stderr).contains("\"boss\" is not a role: use viewer, operator or admin"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        &db,
        &["user", "add", "no spaces", "--role", "viewer", "--password-stdin"],
        Some("long enough\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(last_error_line(&out).contains("username: only letters"), "{}", text(&out.stderr));

    let users: i64 = rt
        .block_on(sqlx::query_scalar("select count(*) from fleet.users").fetch_one(&db.pool))
        .expect("count");
    assert_eq!(users, 0);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_create_prints_only_the_token_which_then_authenticates() {
    let db = TestDb::migrated().await;
    let out = run(
        &db,
        &["user", "add", "erp", "--role", "operator", "--password-stdin"],
        Some("long enough\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = run(&db, &["token", "create", "--user", "ERP", "--name", "erp-sync"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the token: {stdout}");
    let token = lines[0];
    assert!(token.starts_with("fltd_") && token.len() == 48, "{token}");
    assert!(text(&out.stderr).contains("shown only now"), "{}", text(&out.stderr));

    let (name, stored): (String, String) =
        sqlx::query_as("select name, token_hash from fleet.api_tokens")
            .fetch_one(&db.pool)
            .await
            .expect("token row");
    assert_eq!(name, "erp-sync");
    assert_eq!(stored, fleet_accounts::secret::hash(token), "stored hashed");

    let url = api(&db).await;
    let me: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!((me["username"].as_str(), me["role"].as_str()), (Some("erp"), Some("operator")));

    let out = run(&db, &["token", "create", "--user", "nobody"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(last_error_line(&out).contains("there is no user \"nobody\""), "{}", text(&out.stderr));
}
