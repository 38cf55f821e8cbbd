//! Load on fleetd's API: N concurrent keep-alive connections issue GET requests for D seconds;
//! prints requests per second and latency percentiles (p50, p90, p99, max) per URL, as text and
//! as one JSON line. Requests run only against the address given (a local fleetd).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "GET load on a running fleetd's API")]
struct Args {
    /// Base URL of fleetd, e.g. http://127.0.0.1:8080 (loopback only).
    #[arg(long)]
    base: String,
    /// Bearer token.
    #[arg(long, env = "API_LOAD_TOKEN")]
    token: String,
    /// Path to request, repeatable; each is measured on its own, one after the other.
    #[arg(long = "path", required = true)]
    paths: Vec<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds per path.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Each connection sends `If-None-Match` with the entity tag of its last answer, as a
    /// browser revalidating its copy does; `304 Not Modified` counts as a success.
    #[arg(long)]
    conditional: bool,
    /// Each request sends `Accept-Encoding: gzip`, as browsers do; the answers' compressed size
    /// is what is counted (one answer per path is inflated and checked to be JSON).
    #[arg(long)]
    gzip: bool,
}

struct Outcome {
    latencies_us: Vec<u64>,
    errors: u64,
    bytes: u64,
    not_modified: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let host = url::Url::parse(&args.base).context("--base")?;
    let local = matches!(host.host_str(), Some("127.0.0.1" | "localhost" | "[::1]" | "::1"));
    if !local {
        bail!("--base must be a loopback address");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    for path in &args.paths {
        let url = format!("{}{path}", args.base.trim_end_matches('/'));
        // one warm-up request, which must succeed
        let mut warm = client.get(&url).bearer_auth(&args.token);
        if args.gzip {
            warm = warm.header(reqwest::header::ACCEPT_ENCODING, "gzip");
        }
        let r = warm.send().await?;
        if !r.status().is_success() {
            bail!("GET {path}: {}", r.status());
        }
        let gzipped = r
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .is_some_and(|e| e.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let body = r.bytes().await?;
        if gzipped {
            let mut inflated = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut inflated)
                .with_context(|| format!("GET {path}: the gzip answer does not inflate"))?;
            serde_json::from_slice::<serde_json::Value>(&inflated)
                .with_context(|| format!("GET {path}: the inflated answer is not JSON"))?;
        }
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..args.connections {
            let (client, url, token) = (client.clone(), url.clone(), args.token.clone());
            let conditional = args.conditional;
            let gzip = args.gzip;
            tasks.push(tokio::spawn(async move {
                let mut o =
                    Outcome { latencies_us: Vec::new(), errors: 0, bytes: 0, not_modified: 0 };
                let mut etag: Option<reqwest::header::HeaderValue> = None;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let mut req = client.get(&url).bearer_auth(&token);
                    if gzip {
                        req = req.header(reqwest::header::ACCEPT_ENCODING, "gzip");
                    }
                    if let Some(tag) = etag.as_ref().filter(|_| conditional) {
                        req = req.header(reqwest::header::IF_NONE_MATCH, tag.clone());
                    }
                    let ok = match req.send().await {
                        Ok(r) if r.status() == reqwest::StatusCode::NOT_MODIFIED => {
                            o.not_modified += 1;
                            true
                        }
                        Ok(r) if r.status().is_success() => {
                            etag = r.headers().get(reqwest::header::ETAG).cloned();
                            match r.bytes().await {
                                Ok(b) => {
                                    o.bytes += b.len() as u64;
                                    true
                                }
                                Err(_) => false,
                            }
                        }
                        _ => false,
                    };
                    if ok {
                        o.latencies_us.push(t.elapsed().as_micros() as u64);
                    } else {
                        o.errors += 1;
                    }
                }
                o
            }));
        }
        let mut all = Vec::new();
        let (mut errors, mut bytes, mut not_modified) = (0, 0, 0);
        for t in tasks {
            let o = t.await?;
            all.extend(o.latencies_us);
            errors += o.errors;
            bytes += o.bytes;
            not_modified += o.not_modified;
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.sort_unstable();
        let pct = |p: f64| -> f64 {
            if all.is_empty() {
                return 0.0;
            }
            let i = ((all.len() as f64 - 1.0) * p).round() as usize;
            all[i] as f64 / 1000.0
        };
        let rps = all.len() as f64 / elapsed;
        let sent = all.len() as u64 - not_modified;
        println!(
            "GET {path}{}: {} ok ({not_modified} not modified), {errors} errors in {elapsed:.1} s \
             with {} connections: {rps:.0} req/s, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, \
             max {:.1} ms, {:.0} KiB per full response",
            match (args.conditional, args.gzip) {
                (true, true) => " (conditional, gzip)",
                (true, false) => " (conditional)",
                (false, true) => " (gzip)",
                (false, false) => "",
            },
            all.len(),
            args.connections,
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(1.0),
            if sent == 0 { 0.0 } else { bytes as f64 / sent as f64 / 1024.0 },
        );
        println!(
            "{}",
            serde_json::json!({
                "path": path, "conditional": args.conditional, "gzip": args.gzip, "ok": all.len(),
                "not_modified": not_modified, "errors": errors, "seconds": elapsed,
                "connections": args.connections, "rps": rps, "p50_ms": pct(0.5),
                "p90_ms": pct(0.9), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            })
        );
    }
    Ok(())
}
