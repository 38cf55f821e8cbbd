//! Password hashing: Argon2id with the argon2 crate's defaults (19 MiB, 2 passes, 1 lane, the
//! OWASP recommendation), stored as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$…`). Hashing
//! is CPU-bound, so the async helpers run it on the blocking pool.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::AccountError;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in characters (hashing cost grows with the input).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Checks a new password against the policy; the message suits a field error.
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(format!("at least {MIN_PASSWORD_CHARS} characters"));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!("at most {MAX_PASSWORD_CHARS} characters"));
    }
    if password.trim().is_empty() {
        return Err("must not be only spaces".to_owned());
    }
    Ok(())
}

/// The PHC string of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// True when `password` matches the PHC string `phc`. An unreadable hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "a stored password hash is not a PHC string");
            false
        }
    }
}

/// [`hash`] on the blocking pool.
pub async fn hash_async(password: String) -> Result<String, AccountError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| AccountError::Hashing(e.to_string()))?
        .map_err(|e| AccountError::Hashing(e.to_string()))
}

/// [`verify`] on the blocking pool. With no stored hash (unknown user) it verifies against a
/// fixed dummy hash, so a wrong username costs as long as a wrong password.
pub async fn verify_async(password: String, phc: Option<String>) -> Result<bool, AccountError> {
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify(&password, &phc),
        None => {
            let _ = verify(&password, dummy_hash());
            false
        }
    })
    .await
    .map_err(|e| AccountError::Hashing(e.to_string()))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("no user has this password").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_strings_that_verify_only_the_right_password() {
        let phc = hash("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(verify("correct horse", &phc));
        assert!(!verify("correct horsE", &phc));
        assert_ne!(phc, hash("correct horse").expect("hash"), "salted");
        assert!(!verify("anything", "not a hash"));
    }

    #[test]
    fn the_policy_wants_8_to_256_characters_not_all_blank() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("        ").is_err());
        assert!(check_policy("eight ch").is_ok());
        assert!(check_policy(&"x".repeat(257)).is_err());
        assert!(check_policy("päßwörd!").is_ok(), "counted in characters");
    }
}
