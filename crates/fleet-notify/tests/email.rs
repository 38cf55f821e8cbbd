//! E-mail against a real SMTP server (aiosmtpd, started per test): plain delivery of a
//! multipart message, STARTTLS with a private CA and AUTH, TLS from the first byte, and how
//! refusals and failures map to outcomes.

mod support;

use std::time::Duration;

use fleet_core::notification::Channel;
use fleet_notify::channels::Outcome;
use support::{channels, channels_of, closed_port, delivery, message, SinkTls, SmtpSink, TestCa};

const FROM: &str = "fleetd <fleet@example.com>";
const TIMEOUT: Duration = Duration::from_secs(10);

fn plain_settings(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("FLEETD_SMTP_HOST", "127.0.0.1".into()),
        ("FLEETD_SMTP_PORT", port.to_string()),
        ("FLEETD_SMTP_SECURITY", "plain".into()),
        ("FLEETD_SMTP_FROM", FROM.into()),
    ]
}

#[tokio::test]
async fn a_plain_delivery_is_multipart_text_and_html_with_subject_from_and_to() {
    let sink = SmtpSink::start(SinkTls::None, None);
    let ch = channels_of(&plain_settings(sink.port), TIMEOUT);
    assert!(ch.configured(Channel::Email));
    let m = message();
    let outcome = ch.send(&delivery(Channel::Email, "ops@example.com", &m, None)).await;
    assert!(
        matches!(&outcome, Outcome::Sent { status: Some(250), response } if response.contains("queued as fleet-test-1")),
        "{outcome:?}"
    );
    let got = sink.received();
    assert_eq!(got.len(), 1);
    let (meta, raw) = &got[0];
    assert_eq!(meta["mail_from"], "fleet@example.com");
    assert_eq!(meta["rcpt_tos"], serde_json::json!(["ops@example.com"]));
    assert_eq!(meta["tls"], false);
    assert_eq!(meta["subject"], m.subject);
    assert_eq!(meta["from"], FROM);
    assert_eq!(meta["to"], "ops@example.com");
    assert_eq!(meta["message_id"], "<6f1c2d3e-0000-4000-8000-000000000041@fleetd>");
    assert_eq!(meta["content_type"], "multipart/alternative");
    let parts = meta["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 2, "{raw}");
    assert_eq!(parts[0]["type"], "text/plain");
    assert_eq!(parts[0]["content"].as_str().map(|s| s.replace("\r\n", "\n")), Some(m.text.clone()));
    assert_eq!(parts[1]["type"], "text/html");
    assert!(
        parts[1]["content"].as_str().is_some_and(|h| h.contains("<h2>SOS alarm</h2>")),
        "{raw}"
    );
}

#[tokio::test]
async fn smtp_refusals_are_permanent_for_5xx_and_retried_for_4xx() {
    let sink = SmtpSink::start(SinkTls::None, None);
    let ch = channels_of(&plain_settings(sink.port), TIMEOUT);
    let m = message();
    let rejected = ch.send(&delivery(Channel::Email, "reject@example.com", &m, None)).await;
    assert!(
        matches!(&rejected, Outcome::Permanent { status: Some(550), error } if error.contains("mailbox unavailable")),
        "{rejected:?}"
    );
    let busy = ch.send(&delivery(Channel::Email, "busy@example.com", &m, None)).await;
    assert!(matches!(&busy, Outcome::Retry { status: Some(451), .. }), "{busy:?}");
    let bad = ch.send(&delivery(Channel::Email, "not an address", &m, None)).await;
    assert!(matches!(&bad, Outcome::Permanent { status: None, .. }), "{bad:?}");
    assert!(sink.received().is_empty(), "nothing was accepted");
}

#[tokio::test]
async fn an_unreachable_server_is_retried_and_an_unconfigured_channel_is_permanent() {
    let ch = channels_of(&plain_settings(closed_port()), TIMEOUT);
    let m = message();
    let outcome = ch.send(&delivery(Channel::Email, "ops@example.com", &m, None)).await;
    assert!(matches!(&outcome, Outcome::Retry { status: None, .. }), "{outcome:?}");

    let none = channels(&[], TIMEOUT);
    assert!(!none.configured(Channel::Email));
    let outcome = none.send(&delivery(Channel::Email, "ops@example.com", &m, None)).await;
    assert!(
        matches!(&outcome, Outcome::Permanent { error, .. } if error.contains("not configured: set FLEETD_SMTP_HOST")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn starttls_checks_the_certificate_and_logs_in() {
    let ca = TestCa::new();
    let sink = SmtpSink::start(SinkTls::StartTls(&ca), Some("fleet:s3cret-smtp-pw"));
    let ca_file = ca.ca_cert.display().to_string();
    let settings = |password: &'static str, with_ca: bool| {
        let mut v = vec![
            ("FLEETD_SMTP_HOST", "127.0.0.1".to_owned()),
            ("FLEETD_SMTP_PORT", sink.port.to_string()),
            ("FLEETD_SMTP_SECURITY", "starttls".to_owned()),
            ("FLEETD_SMTP_FROM", FROM.to_owned()),
            ("FLEETD_SMTP_USER", "fleet".to_owned()),
            ("FLEETD_SMTP_PASSWORD", password.to_owned()),
        ];
        if with_ca {
            v.push(("FLEETD_SMTP_CA_FILE", ca_file.clone()));
        }
        v
    };
    let m = message();
    let ch = channels_of(&settings("s3cret-smtp-pw", true), TIMEOUT);
    let outcome = ch.send(&delivery(Channel::Email, "ops@example.com", &m, None)).await;
    assert!(outcome.is_sent(), "{outcome:?}");
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["tls"], true, "the message went over TLS");
    assert_eq!(got[0].0["login"], "fleet");

    let wrong = channels_of(&settings("wrong-password-xyz", true), TIMEOUT);
    let outcome = wrong.send(&delivery(Channel::Email, "ops@example.com", &m, None)).await;
    assert!(matches!(&outcome, Outcome::Permanent { status: Some(535), .. }), "{outcome:?}");
    assert!(!outcome.detail().contains("wrong-password-xyz"), "{outcome:?}");

    // without the private CA the server's certificate is not trusted: nothing is sent
    let untrusted = channels_of(&settings("s3cret-smtp-pw", false), TIMEOUT);
    let outcome = untrusted.send(&delivery(Channel::Email, "ops@example.com", &m, None)).await;
    assert!(matches!(&outcome, Outcome::Retry { .. }), "{outcome:?}");
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn starttls_is_required_when_chosen() {
    // a server that offers no STARTTLS: the message must not go out in the clear
    let sink = SmtpSink::start(SinkTls::None, None);
    let ch = channels(
        &[
            ("FLEETD_SMTP_HOST", "127.0.0.1"),
            ("FLEETD_SMTP_PORT", &sink.port.to_string()),
            ("FLEETD_SMTP_FROM", FROM),
        ],
        TIMEOUT,
    );
    let m = message();
    let outcome = ch.send(&delivery(Channel::Email, "ops@example.com", &m, None)).await;
    assert!(!outcome.is_sent(), "{outcome:?}");
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn implicit_tls_delivers_from_the_first_byte() {
    let ca = TestCa::new();
    let sink = SmtpSink::start(SinkTls::Implicit(&ca), None);
    let ca_file = ca.ca_cert.display().to_string();
    let port = sink.port.to_string();
    let ch = channels(
        &[
            ("FLEETD_SMTP_HOST", "127.0.0.1"),
            ("FLEETD_SMTP_PORT", &port),
            ("FLEETD_SMTP_SECURITY", "tls"),
            ("FLEETD_SMTP_FROM", FROM),
            ("FLEETD_SMTP_CA_FILE", &ca_file),
        ],
        TIMEOUT,
    );
    let m = message();
    let outcome = ch.send(&delivery(Channel::Email, "ops@example.com", &m, None)).await;
    assert!(outcome.is_sent(), "{outcome:?}");
    assert_eq!(sink.received().len(), 1);
}
