//! Waiting for what happens in its own time (another task, another process, the database)
//! without a fixed sleep: ask until it holds, fail the test at a deadline.

use std::time::Duration;

/// How often [`eventually`] asks.
const EVERY: Duration = Duration::from_millis(20);

/// Waits until `done` holds, asking every 20 ms, and fails the test naming `what` when it has
/// not held within `within`.
pub async fn eventually(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_once_the_condition_holds() {
        let mut asked = 0;
        eventually("three asks", Duration::from_secs(5), async || {
            asked += 1;
            asked == 3
        })
        .await;
        assert_eq!(asked, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "not within 50ms: never")]
    async fn fails_at_the_deadline() {
        eventually("never", Duration::from_millis(50), async || false).await;
    }
}
