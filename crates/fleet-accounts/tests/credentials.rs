//! Sessions and API tokens in `fleet.sessions` and `fleet.api_tokens`: they authenticate their
//! user while they hold, stop when ended, revoked or when the user is deactivated, and only
//! their hashes are stored.

use chrono::{Duration, Utc};
use fleet_accounts::credential::{self, Held};
use fleet_accounts::users::{self, NewUser, UserChanges};
use fleet_accounts::{secret, session, token, AccountError, Credential, Role};
use fleet_testkit::TestDb;
use sqlx::PgPool;

async fn user(pool: &PgPool, username: &str, role: Role) -> i32 {
    let new = NewUser {
        username: username.to_owned(),
        display_name: String::new(),
        role,
        password: "correct horse".to_owned(),
    };
    users::create(pool, new).await.expect("create user").user_id
}

#[tokio::test]
async fn a_session_authenticates_its_user_until_it_is_ended() {
    let db = TestDb::migrated().await;
    let id = user(&db.pool, "alice", Role::Operator).await;
    let ip = "203.0.113.7".parse().expect("ip");
    let new =
        session::create(&db.pool, id, Some("curl/8".to_owned()), Some(ip)).await.expect("create");
    let (stored, stored_ip): (String, String) =
        sqlx::query_as("select session_hash, host(ip) from fleet.sessions where user_id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .expect("stored");
    assert_eq!(stored, secret::hash(&new.id), "only the hash is stored");
    assert_eq!(stored_ip, "203.0.113.7");
    let idle = Utc::now() + Duration::days(7) - new.expires_at;
    assert!(idle.num_seconds().abs() < 60, "expires a week ahead: {}", new.expires_at);

    let who = session::authenticate(&db.pool, &new.id).await.expect("auth").expect("live");
    assert_eq!((who.user_id, who.username.as_str(), who.role), (id, "alice", Role::Operator));
    assert_eq!(who.credential, Credential::Session { session_hash: stored.clone() });
    assert_eq!(session::expires_at(&db.pool, &stored).await.expect("expiry"), Some(new.expires_at));
    assert!(session::authenticate(&db.pool, "not a session").await.expect("auth").is_none());

    session::end_id(&db.pool, &new.id).await.expect("end");
    assert!(session::authenticate(&db.pool, &new.id).await.expect("auth").is_none());
    assert_eq!(session::expires_at(&db.pool, &stored).await.expect("expiry"), None);
    session::end(&db.pool, &stored).await.expect("ending twice is fine");
}

#[tokio::test]
async fn a_token_acts_as_its_user_until_revoked_and_is_stored_hashed() {
    let db = TestDb::migrated().await;
    let id = user(&db.pool, "erp", Role::Viewer).await;
    let created = token::create(&db.pool, id, "erp-sync", None).await.expect("create");
    assert!(created.token.starts_with(token::PREFIX) && created.token.len() == 48);
    assert_eq!(created.info.token_prefix, created.token[..token::SHOWN_CHARS]);
    assert_eq!((created.info.username.as_str(), created.info.name.as_str()), ("erp", "erp-sync"));
    let stored: String =
        sqlx::query_scalar("select token_hash from fleet.api_tokens where token_id = $1")
            .bind(created.info.token_id)
            .fetch_one(&db.pool)
            .await
            .expect("stored");
    assert_eq!(stored, secret::hash(&created.token));

    let who = token::authenticate(&db.pool, &created.token).await.expect("auth").expect("valid");
    assert_eq!((who.user_id, who.role), (id, Role::Viewer));
    assert_eq!(who.credential, Credential::Token { token_id: created.info.token_id });
    let listed = token::list(&db.pool).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "use is noted");
    assert!(token::authenticate(&db.pool, "fltd_unknown").await.expect("auth").is_none());
    assert!(token::authenticate(&db.pool, "no prefix").await.expect("auth").is_none());

    assert!(token::revoke(&db.pool, created.info.token_id).await.expect("revoke"));
    let first = token::list(&db.pool).await.expect("list")[0].revoked_at.expect("revoked");
    assert!(token::revoke(&db.pool, created.info.token_id).await.expect("again"));
    let second = token::list(&db.pool).await.expect("list")[0].revoked_at;
    assert_eq!(second, Some(first), "the first revocation time is kept");
    assert!(token::authenticate(&db.pool, &created.token).await.expect("auth").is_none());
    assert!(!token::revoke(&db.pool, 9999).await.expect("no such token"));
}

#[tokio::test]
async fn tokens_for_no_user_are_refused_and_expired_ones_do_not_authenticate() {
    let db = TestDb::migrated().await;
    match token::create(&db.pool, 9999, "x", None).await {
        Err(AccountError::NotFound(m)) => assert_eq!(m, "there is no user 9999"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let id = user(&db.pool, "erp", Role::Viewer).await;
    let soon = Utc::now() + Duration::hours(1);
    let later = token::create(&db.pool, id, "later", Some(soon)).await.expect("create");
    assert!(token::authenticate(&db.pool, &later.token).await.expect("auth").is_some());
    sqlx::query("update fleet.api_tokens set expires_at = now() - interval '1 second'")
        .execute(&db.pool)
        .await
        .expect("expire");
    assert!(token::authenticate(&db.pool, &later.token).await.expect("auth").is_none());
}

#[tokio::test]
async fn lapsed_names_the_holders_whose_credential_stopped_holding() {
    let db = TestDb::migrated().await;
    users::create(
        &db.pool,
        NewUser {
            username: "admin".to_owned(),
            display_name: String::new(),
            role: Role::Admin,
            password: "correct horse".to_owned(),
        },
    )
    .await
    .expect("admin");
    let a = user(&db.pool, "a", Role::Viewer).await;
    let b = user(&db.pool, "b", Role::Viewer).await;
    let kept = token::create(&db.pool, a, "kept", None).await.expect("kept").info.token_id;
    let revoked = token::create(&db.pool, a, "revoked", None).await.expect("rev").info.token_id;
    let live = session::create(&db.pool, a, None, None).await.expect("live").id;
    let ended = session::create(&db.pool, a, None, None).await.expect("ended").id;
    let of_b = session::create(&db.pool, b, None, None).await.expect("b").id;
    let held = |id: i64, user_id: i32, credential: Credential| Held { id, user_id, credential };
    let by_session = |id: &str| Credential::Session { session_hash: secret::hash(id) };
    let all = [
        held(1, a, Credential::Token { token_id: kept }),
        held(2, a, Credential::Token { token_id: revoked }),
        held(3, a, by_session(&live)),
        held(4, a, by_session(&ended)),
        held(5, b, by_session(&of_b)),
        // a token presented for another user never holds
        held(6, b, Credential::Token { token_id: kept }),
    ];
    assert_eq!(credential::lapsed(&db.pool, &all).await.expect("check"), [6]);
    token::revoke(&db.pool, revoked).await.expect("revoke");
    session::end_id(&db.pool, &ended).await.expect("end");
    let off = UserChanges { active: Some(false), ..Default::default() };
    users::update(&db.pool, b, off).await.expect("deactivate b");
    let mut lapsed = credential::lapsed(&db.pool, &all).await.expect("check");
    lapsed.sort_unstable();
    assert_eq!(lapsed, [2, 4, 5, 6]);
    assert!(credential::lapsed(&db.pool, &[]).await.expect("none").is_empty());
}
