//! Sending the pre-encoded requests as fast as the receiver takes them: `concurrency` workers,
//! each with one request in flight at a time, over a shared pool of keep-alive connections.
//! Only items of requests answered 2xx are counted; anything else is sent again, as the vendor
//! does. A request the receiver can never accept (a 4xx other than 408 and 429: wrong token,
//! wrong path, body too large) stops the run, since resending it would only spin.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;

/// One request body with the number of items it carries.
#[derive(Debug, Clone)]
pub struct Request {
    pub items: usize,
    pub body: Vec<u8>,
}

/// The form body of a Data Push request: the shared secret and the item list.
pub fn form_body(token: &str, data_list: &str) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .append_pair("data_list", data_list)
        .finish()
        .into_bytes()
}

/// What a run achieved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Items in requests answered 2xx.
    pub items: u64,
    pub requests: u64,
    /// Requests sent again after a non-2xx answer or a transport error.
    pub retries: u64,
    /// From the first request sent to the last acknowledgement.
    pub elapsed: Duration,
}

impl Report {
    pub fn items_per_s(&self) -> f64 {
        self.items as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Longest a single request may keep failing before the run gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

#[derive(Debug, Default)]
struct Counters {
    next: AtomicUsize,
    items: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

/// POSTs every request of `requests` to `url` over `concurrency` connections.
pub async fn run(
    url: &str,
    requests: Arc<Vec<Request>>,
    concurrency: usize,
    timeout: Duration,
) -> anyhow::Result<Report> {
    let concurrency = concurrency.max(1);
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()?;
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url, requests, counters) =
                (http.clone(), url.to_owned(), requests.clone(), counters.clone());
            tokio::spawn(async move { worker(&http, &url, &requests, &counters).await })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    let elapsed = started.elapsed();
    Ok(Report {
        items: counters.items.load(Ordering::Relaxed),
        requests: counters.requests.load(Ordering::Relaxed),
        retries: counters.retries.load(Ordering::Relaxed),
        elapsed,
    })
}

async fn worker(
    http: &reqwest::Client,
    url: &str,
    requests: &[Request],
    counters: &Counters,
) -> anyhow::Result<()> {
    loop {
        let i = counters.next.fetch_add(1, Ordering::Relaxed);
        let Some(request) = requests.get(i) else { return Ok(()) };
        let first_try = Instant::now();
        let mut backoff = Duration::from_millis(10);
        loop {
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let sent = http
                .post(url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(request.body.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(resp) if resp.status().is_success() => {
                    // read the reply so the connection goes back to the pool
                    let _ = resp.bytes().await;
                    counters.items.fetch_add(request.items as u64, Ordering::Relaxed);
                    break;
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_client_error()
                        && status != StatusCode::REQUEST_TIMEOUT
                        && status != StatusCode::TOO_MANY_REQUESTS
                    {
                        bail!("{url} answered {status}: {text}");
                    }
                    format!("{status}: {text}")
                }
                Err(e) => e.to_string(),
            };
            if first_try.elapsed() > GIVE_UP_AFTER {
                bail!("request {i} still failing after {GIVE_UP_AFTER:?}: {failure}");
            }
            counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_body_encodes_both_fields() {
        let body = form_body("t&k", "[{\"a\":1}]");
        assert_eq!(
            String::from_utf8(body).unwrap_or_default(),
            "token=t%26k&data_list=%5B%7B%22a%22%3A1%7D%5D"
        );
    }
}
