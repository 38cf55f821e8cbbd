//! Users in `fleet.users`: creation with its checks, changes that keep an active admin, login
//! checks, and the demo admin.

use fleet_accounts::users::{self, NewUser, UserChanges};
use fleet_accounts::{session, AccountError, Role};
use fleet_testkit::TestDb;
use sqlx::PgPool;

fn new_user(username: &str, role: Role) -> NewUser {
    NewUser {
        username: username.to_owned(),
        display_name: format!("  {username} Name "),
        role,
        password: "correct horse".to_owned(),
    }
}

async fn sessions_of(pool: &PgPool, user_id: i32) -> i64 {
    sqlx::query_scalar("select count(*) from fleet.sessions where user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
        .expect("count sessions")
}

#[tokio::test]
async fn a_created_user_is_listed_and_read_back_without_its_password() {
    let db = TestDb::migrated().await;
    let alice = users::create(&db.pool, new_user("Alice", Role::Admin)).await.expect("create");
    assert_eq!((alice.username.as_str(), alice.role, alice.active), ("Alice", Role::Admin, true));
    assert_eq!(alice.display_name, "Alice Name", "trimmed");
    assert_eq!(alice.last_login_at, None);
    let stored: String =
        sqlx::query_scalar("select password_hash from fleet.users where user_id = $1")
            .bind(alice.user_id)
            .fetch_one(&db.pool)
            .await
            .expect("hash");
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    let bob = users::create(&db.pool, new_user("bob", Role::Viewer)).await.expect("bob");
    let listed: Vec<i32> =
        users::list(&db.pool).await.expect("list").iter().map(|u| u.user_id).collect();
    assert_eq!(listed, [alice.user_id, bob.user_id]);
    assert_eq!(users::get(&db.pool, bob.user_id).await.expect("get").role, Role::Viewer);
    assert_eq!(users::id_of(&db.pool, "ALICE").await.expect("id"), Some(alice.user_id));
    assert_eq!(users::id_of(&db.pool, "carol").await.expect("id"), None);
    match users::get(&db.pool, 9999).await {
        Err(AccountError::NotFound(m)) => assert_eq!(m, "there is no user 9999"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_fields_are_named_and_a_taken_username_conflicts_ignoring_case() {
    let db = TestDb::migrated().await;
    let bad = NewUser {
        username: "with space".to_owned(),
        display_name: String::new(),
        role: Role::Viewer,
        password: "short".to_owned(),
    };
    match users::create(&db.pool, bad).await {
        Err(AccountError::Invalid(fields)) => {
            let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(names, ["username", "password"]);
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    users::create(&db.pool, new_user("alice", Role::Admin)).await.expect("alice");
    match users::create(&db.pool, new_user("ALICE", Role::Viewer)).await {
        Err(AccountError::Conflict(m)) => assert_eq!(m, "the username \"ALICE\" is taken"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(users::list(&db.pool).await.expect("list").len(), 1);
}

#[tokio::test]
async fn the_last_active_admin_can_be_neither_demoted_deactivated_nor_deleted() {
    let db = TestDb::migrated().await;
    let admin = users::create(&db.pool, new_user("root", Role::Admin)).await.expect("admin");
    let demote = UserChanges { role: Some(Role::Operator), ..Default::default() };
    let deactivate = UserChanges { active: Some(false), ..Default::default() };
    for changes in [demote.clone(), deactivate] {
        let e = users::update(&db.pool, admin.user_id, changes).await.expect_err("last admin");
        assert!(matches!(e, AccountError::Conflict(_)), "{e:?}");
    }
    let e = users::delete(&db.pool, admin.user_id).await.expect_err("last admin");
    assert!(matches!(e, AccountError::Conflict(_)), "{e:?}");
    assert_eq!(users::get(&db.pool, admin.user_id).await.expect("kept").role, Role::Admin);
    // with a second admin the first may step down, and then be deleted
    users::create(&db.pool, new_user("second", Role::Admin)).await.expect("second");
    let changed = users::update(&db.pool, admin.user_id, demote).await.expect("demote");
    assert_eq!(changed.role, Role::Operator);
    users::delete(&db.pool, admin.user_id).await.expect("delete");
    let e = users::delete(&db.pool, admin.user_id).await.expect_err("gone");
    assert!(matches!(e, AccountError::NotFound(_)), "{e:?}");
    let e = users::update(&db.pool, 9999, UserChanges::default()).await.expect_err("no user");
    assert!(matches!(e, AccountError::NotFound(_)), "{e:?}");
}

#[tokio::test]
async fn the_password_is_checked_for_active_users_only_and_a_new_one_ends_sessions() {
    let db = TestDb::migrated().await;
    users::create(&db.pool, new_user("admin", Role::Admin)).await.expect("admin");
    let op = users::create(&db.pool, new_user("op", Role::Operator)).await.expect("op");
    let check = |name: &'static str, password: &'static str| {
        let pool = db.pool.clone();
        async move { users::check_password(&pool, name, password.to_owned()).await.expect("check") }
    };
    assert_eq!(check("OP", "correct horse").await, Some(op.user_id), "any case");
    assert_eq!(check("op", "correct horsE").await, None);
    assert_eq!(check("nobody", "correct horse").await, None);

    session::create(&db.pool, op.user_id, None, None).await.expect("session");
    assert_eq!(sessions_of(&db.pool, op.user_id).await, 1);
    let changes = UserChanges { password: Some("battery staple".to_owned()), ..Default::default() };
    users::update(&db.pool, op.user_id, changes).await.expect("new password");
    assert_eq!(sessions_of(&db.pool, op.user_id).await, 0, "a new password ends sessions");
    assert_eq!(check("op", "correct horse").await, None);
    assert_eq!(check("op", "battery staple").await, Some(op.user_id));

    let bad = UserChanges { password: Some("short".to_owned()), ..Default::default() };
    let e = users::update(&db.pool, op.user_id, bad).await.expect_err("policy");
    assert!(matches!(&e, AccountError::Invalid(f) if f[0].field == "password"), "{e:?}");

    session::create(&db.pool, op.user_id, None, None).await.expect("session");
    let off = UserChanges { active: Some(false), ..Default::default() };
    assert!(!users::update(&db.pool, op.user_id, off).await.expect("deactivate").active);
    assert_eq!(sessions_of(&db.pool, op.user_id).await, 0, "deactivating ends sessions");
    assert_eq!(check("op", "battery staple").await, None, "inactive users cannot log in");

    users::record_login(&db.pool, op.user_id).await.expect("record");
    assert!(users::get(&db.pool, op.user_id).await.expect("get").last_login_at.is_some());
}

#[tokio::test]
async fn ensure_admin_creates_the_admin_or_restores_an_existing_user_as_one() {
    let db = TestDb::migrated().await;
    let made = users::ensure_admin(&db.pool, "admin", "first password").await.expect("create");
    assert_eq!((made.role, made.active), (Role::Admin, true));
    users::create(&db.pool, new_user("keeper", Role::Admin)).await.expect("keeper");
    let off = UserChanges { role: Some(Role::Viewer), active: Some(false), ..Default::default() };
    users::update(&db.pool, made.user_id, off).await.expect("demote");
    let again = users::ensure_admin(&db.pool, "ADMIN", "second password").await.expect("reset");
    assert_eq!(again.user_id, made.user_id);
    assert_eq!((again.role, again.active), (Role::Admin, true));
    let ok = users::check_password(&db.pool, "admin", "second password".to_owned()).await;
    assert_eq!(ok.expect("check"), Some(made.user_id));
}
