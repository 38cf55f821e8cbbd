//! fleetd's accounts: the people who sign in ([`users`]) with their [`Role`], their passwords
//! ([`password`]), the login sessions of the web apps ([`session`]), the bearer tokens of
//! integrations ([`token`]) and the failed-login limits ([`throttle`]), with the reads and
//! writes of their tables (`fleet.users`, `fleet.sessions`, `fleet.api_tokens`,
//! `fleet.login_throttle`). The HTTP server and the command line both work through this crate;
//! cookies, headers and problem bodies stay with the HTTP server.

pub mod credential;
pub mod error;
pub mod password;
mod role;
pub mod secret;
pub mod session;
pub mod throttle;
pub mod token;
pub mod users;

pub use error::{AccountError, FieldError};
pub use role::{Credential, Principal, Role};
