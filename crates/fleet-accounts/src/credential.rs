//! Whether credentials still hold, for holders that authenticated a while ago (the live
//! streams, which stay open for hours): the same conditions as [`token::authenticate`] and
//! [`session::authenticate`], checked for many at once.
//!
//! [`token::authenticate`]: crate::token::authenticate
//! [`session::authenticate`]: crate::session::authenticate

use sqlx::PgPool;

use crate::Credential;

/// One credential in use: the holder's own id (anything that tells holders apart), the user
/// it authenticated and how.
#[derive(Debug, Clone)]
pub struct Held {
    pub id: i64,
    pub user_id: i32,
    pub credential: Credential,
}

/// The ids of the holders whose credential no longer holds: a token revoked or expired, a
/// session ended, a user deactivated or deleted. One query whatever the number of holders;
/// only the database can fail.
pub async fn lapsed(pool: &PgPool, held: &[Held]) -> Result<Vec<i64>, sqlx::Error> {
    if held.is_empty() {
        return Ok(Vec::new());
    }
    // each holder has a token or a session; the other column gets a value no row has (token
    // ids start at 1, session hashes are 64 hex digits), which matches nothing
    let (mut ids, mut users, mut tokens, mut sessions) = (vec![], vec![], vec![], vec![]);
    for h in held {
        ids.push(h.id);
        users.push(h.user_id);
        match &h.credential {
            Credential::Token { token_id } => {
                tokens.push(*token_id);
                sessions.push(String::new());
            }
            Credential::Session { session_hash } => {
                tokens.push(0);
                sessions.push(session_hash.clone());
            }
        }
    }
    sqlx::query_scalar!(
        r#"select k.id as "id!"
           from unnest($1::int8[], $2::int4[], $3::int4[], $4::text[])
                as k(id, user_id, token_id, session_hash)
           where not exists (
               select from fleet.users u
               where u.user_id = k.user_id and u.active
                 and (exists (select from fleet.api_tokens t
                              where t.token_id = k.token_id and t.user_id = k.user_id
                                and t.revoked_at is null
                                and (t.expires_at is null or t.expires_at > now()))
                      or exists (select from fleet.sessions s
                                 where s.session_hash = k.session_hash
                                   and s.user_id = k.user_id and s.expires_at > now())))"#,
        &ids,
        &users,
        &tokens,
        &sessions,
    )
    .fetch_all(pool)
    .await
}
