//! What the channel tests share: channels configured like an operator would (through the
//! configuration loader), a message, deliveries, local HTTP stand-ins for the providers, and a
//! real SMTP server (aiosmtpd).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_core::notification::Channel;
use fleet_notify::channels::{Channels, Delivery, Message, WebhookTarget};

/// The channels the settings `pairs` configure, each send limited to `timeout`.
pub fn channels(pairs: &[(&str, &str)], timeout: Duration) -> Channels {
    let map: HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = fleet_config::Loader::new()
        .dotenv(None)
        .env(move |k| map.get(k).cloned())
        .load()
        .expect("the test settings load");
    Channels::with_timeout(&config.notify, timeout).expect("channels")
}

/// [`channels`] for settings whose values were made at run time.
pub fn channels_of(pairs: &[(&str, String)], timeout: Duration) -> Channels {
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    channels(&refs, timeout)
}

pub fn message() -> Message {
    Message {
        subject: "CRITICAL: Lorry 7 (KBX 123A): SOS alarm".into(),
        text: "SOS alarm — Lorry 7 (KBX 123A)\n\nWhen: Sat 5 Dec 23:14 EAT\n".into(),
        html:
            "<!doctype html>\n<html><body><h2>SOS alarm</h2><p>Lorry 7 &amp; co</p></body></html>\n"
                .into(),
        short: "Lorry 7 (KBX 123A): SOS alarm, Sat 5 Dec 23:14 EAT".into(),
        webhook_body: br#"{"test":false,"event_id":981,"kind":"alarm.safety","title":"SOS alarm"}"#
            .to_vec(),
    }
}

pub fn delivery<'a>(
    channel: Channel,
    address: &'a str,
    message: &'a Message,
    webhook: Option<&'a WebhookTarget>,
) -> Delivery<'a> {
    Delivery {
        delivery_id: 41,
        idempotency_key: "6f1c2d3e-0000-4000-8000-000000000041",
        channel,
        address,
        webhook,
        message,
    }
}

/// Serves `router` on a free local port.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("stand-in server");
    });
    addr
}

/// What a stand-in received: method, path, headers (lowercase names) and body.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

pub type Log = Arc<Mutex<Vec<Received>>>;

pub fn record(log: &Log, uri: &axum::http::Uri, headers: &axum::http::HeaderMap, body: &[u8]) {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    log.lock().expect("log").push(Received {
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
    });
}

/// A local port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A running aiosmtpd; stopped when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

pub enum SinkTls<'a> {
    None,
    StartTls(&'a TestCa),
    Implicit(&'a TestCa),
}

impl SmtpSink {
    /// Starts the SMTP server of tests/support/smtp_sink.py. Fails the test, never skips it, when
    /// Python or aiosmtpd is missing. `FLEETD_TEST_PYTHON` names the interpreter (default
    /// python3).
    pub fn start(tls: SinkTls<'_>, auth: Option<&str>) -> SmtpSink {
        let python = std::env::var("FLEETD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let check = Command::new(&python).args(["-c", "import aiosmtpd"]).output();
        match check {
            Ok(out) if out.status.success() => {}
            Ok(_) => panic!(
                "the e-mail tests need a real SMTP server: aiosmtpd is missing for {python}; \
                 pip install aiosmtpd==1.4.6 (or set FLEETD_TEST_PYTHON to a Python that has it)"
            ),
            Err(e) => panic!(
                "the e-mail tests need Python 3 with aiosmtpd ({python}: {e}); \
                 install python3 and pip install aiosmtpd==1.4.6"
            ),
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = closed_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut cmd = Command::new(&python);
        cmd.arg(script)
            .arg("--dir")
            .arg(dir.path())
            .arg("--port")
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        match tls {
            SinkTls::None => {}
            SinkTls::StartTls(ca) => {
                cmd.arg("--tls-cert").arg(&ca.server_cert).arg("--tls-key").arg(&ca.server_key);
            }
            SinkTls::Implicit(ca) => {
                cmd.arg("--tls-cert")
                    .arg(&ca.server_cert)
                    .arg("--tls-key")
                    .arg(&ca.server_key)
                    .arg("--implicit-tls");
            }
        }
        if let Some(auth) = auth {
            cmd.arg("--auth").arg(auth);
        }
        let mut child = cmd.spawn().expect("start the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the SMTP sink's first line");
        assert_eq!(line.trim(), format!("READY {port}"), "the SMTP sink did not start");
        SmtpSink { child, port, dir }
    }

    /// The messages received so far: (envelope and session facts, raw message), oldest first.
    pub fn received(&self) -> Vec<(serde_json::Value, String)> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let meta = std::fs::read_to_string(eml.with_extension("json")).expect("meta");
                let raw = std::fs::read_to_string(&eml).expect("message");
                (serde_json::from_str(&meta).expect("meta json"), raw)
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private certificate authority and a server certificate it signed for 127.0.0.1 and
/// localhost, made with the openssl command.
pub struct TestCa {
    _dir: tempfile::TempDir,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| dir.path().join(n);
        let ext = p("server.ext");
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("ext");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("the TLS e-mail tests need the openssl command");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=fleetd test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        TestCa {
            ca_cert: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
            _dir: dir,
        }
    }
}
