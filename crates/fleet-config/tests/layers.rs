//! Precedence of the configuration sources, error messages and redaction.

use std::collections::HashMap;
use std::io::Write;

use fleet_config::{ConfigError, Loader, Source};

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'static {
    let map: HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn loader() -> Loader {
    Loader::new().dotenv(None).env(env_of(&[]))
}

#[test]
fn defaults_apply_when_nothing_is_configured() {
    let c = loader().load().expect("loads");
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.data_dir.to_str(), Some("./fleetd-data"));
    assert_eq!(c.db.max_connections, 6);
    assert!(c.database_url.is_none());
    assert!(c.analyst_password.is_none());
}

#[test]
fn the_environment_overrides_the_file_which_overrides_the_defaults() {
    let file = file_with(
        "listen = \"0.0.0.0:9000\"\ndb_max_connections = 4\ndata_dir = \"/srv/fleetd\"\n",
    );
    let c = loader()
        .file(file.path())
        .env(env_of(&[("FLEETD_DB_MAX_CONNECTIONS", "7")]))
        .load()
        .expect("loads");
    assert_eq!(c.listen.to_string(), "0.0.0.0:9000", "file beats default");
    assert_eq!(c.db.max_connections, 7, "env beats file");
    assert_eq!(c.data_dir.to_str(), Some("/srv/fleetd"));
    let source_of = |key: &str| c.effective.iter().find(|e| e.key == key).map(|e| e.source);
    assert_eq!(source_of("listen"), Some(Source::File));
    assert_eq!(source_of("db_max_connections"), Some(Source::Env));
    assert_eq!(source_of("db_application_name"), Some(Source::Default));
}

#[test]
fn flags_override_the_environment_and_dotenv_sits_below_it() {
    let dotenv = file_with("FLEETD_LISTEN=127.0.0.1:7000\nFLEETD_DATA_DIR=/from/dotenv\n");
    let c = Loader::new()
        .dotenv(Some(dotenv.path().to_owned()))
        .env(env_of(&[("FLEETD_LISTEN", "127.0.0.1:7100")]))
        .flag("listen", "127.0.0.1:7200")
        .load()
        .expect("loads");
    assert_eq!(c.listen.to_string(), "127.0.0.1:7200");
    assert_eq!(c.data_dir.to_str(), Some("/from/dotenv"));
}

#[test]
fn exports_must_leave_the_api_pool_a_connection() {
    let c = loader().env(env_of(&[])).load().expect("defaults");
    assert!(c.api.exports_max < c.api.db_connections as usize);
    assert_eq!(c.db.max_connections + c.api.db_connections, 12, "the default budget");
    let err = loader()
        .env(env_of(&[("FLEETD_DB_API_CONNECTIONS", "3"), ("FLEETD_EXPORTS_MAX", "3")]))
        .load()
        .expect_err("no connection left");
    assert!(err.to_string().contains("exports_max (FLEETD_EXPORTS_MAX"), "{err}");
    assert!(err.to_string().contains("less than db_api_connections (3)"), "{err}");
}

#[test]
fn a_bad_value_names_the_setting_its_variable_and_the_problem() {
    let err =
        loader().env(env_of(&[("FLEETD_DB_MAX_CONNECTIONS", "lots")])).load().expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "invalid setting db_max_connections (FLEETD_DB_MAX_CONNECTIONS, from the environment): \"lots\" is not a whole number"
    );
    let err = loader().env(env_of(&[("FLEETD_LISTEN", "localhost")])).load().expect_err("invalid");
    assert!(err.to_string().contains("listen (FLEETD_LISTEN"), "{err}");
    let err = loader().env(env_of(&[("DATABASE_URL", "mysql://x")])).load().expect_err("invalid");
    assert!(err.to_string().contains("postgres://"), "{err}");
}

#[test]
fn unknown_and_mistyped_file_keys_are_rejected() {
    let file = file_with("lissen = \"0.0.0.0:1\"\n");
    assert!(
        matches!(loader().file(file.path()).load(), Err(ConfigError::UnknownKey { key, .. }) if key == "lissen")
    );
    let file = file_with("db_max_connections = \"ten\"\n");
    let err = loader().file(file.path()).load().expect_err("mistyped");
    assert!(err.to_string().contains("expected a whole number, found string"), "{err}");
}

#[test]
fn secrets_never_appear_in_debug_or_the_rendered_config() {
    let c = loader()
        .env(env_of(&[
            ("DATABASE_URL", "postgres://fleet:topsecretpw@db:5432/fleet"),
            ("FLEETD_ANALYST_PASSWORD", "analyst-password-123"),
        ]))
        .load()
        .expect("loads");
    let debug = format!("{c:?}");
    let rendered = c.render();
    for text in [&debug, &rendered] {
        assert!(!text.contains("topsecretpw"), "{text}");
        assert!(!text.contains("analyst-password-123"), "{text}");
    }
    assert!(
        rendered.contains("database_url = \"postgres://fleet:[redacted]@db:5432/fleet\""),
        "{rendered}"
    );
    assert!(rendered.contains("analyst_password = \"[redacted]\""), "{rendered}");
    assert_eq!(
        c.analyst_password.as_ref().map(|p| p.expose().as_str()),
        Some("analyst-password-123")
    );
}

#[test]
fn every_setting_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    for s in fleet_config::settings::SETTINGS {
        assert!(readme.contains(&format!("`{}`", s.env)), "README.md does not document {}", s.env);
    }
}

#[test]
fn every_setting_is_listed_in_the_env_example() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.env.example"))
            .expect(".env.example");
    for s in fleet_config::settings::SETTINGS {
        assert!(
            example.lines().any(|l| l.trim_start_matches('#').starts_with(&format!("{}=", s.env))),
            ".env.example does not list {}",
            s.env
        );
    }
}

#[test]
fn a_bad_backup_schedule_or_webhook_is_refused_by_name() {
    let err = loader()
        .env(env_of(&[("FLEETD_BACKUP_SCHEDULE", "every night")]))
        .load()
        .expect_err("not cron");
    assert!(err.to_string().contains("backup_schedule (FLEETD_BACKUP_SCHEDULE"), "{err}");
    let err = loader()
        .env(env_of(&[(
            "FLEETD_ALERT_WEBHOOKS",
            "https://ok.example/a,hooks.example.com/x-secret",
        )]))
        .load()
        .expect_err("not a URL");
    assert!(err.to_string().contains("FLEETD_ALERT_WEBHOOKS"), "{err}");
    assert!(err.to_string().contains("URL 2 of the list"), "{err}");
    assert!(!err.to_string().contains("x-secret"), "the refusal never shows the URL: {err}");
    let c = loader()
        .env(env_of(&[
            ("FLEETD_BACKUP_SCHEDULE", "30 2 * * *"),
            ("FLEETD_ALERT_WEBHOOKS", "https://hooks.example.com/a, http://127.0.0.1:9/b"),
            ("FLEETD_RETENTION_POSITIONS_DAYS", "0"),
        ]))
        .load()
        .expect("loads");
    assert!(c.backup.schedule.is_some());
    let hooks: Vec<&str> = c.alerts.webhooks.iter().map(|w| w.expose().as_str()).collect();
    assert_eq!(hooks, ["https://hooks.example.com/a", "http://127.0.0.1:9/b"]);
    assert!(!format!("{:?}", c.alerts).contains("hooks.example.com"), "not in Debug either");
    assert_eq!(c.retention.positions_days, None, "0 keeps positions forever");
    assert_eq!(c.retention.trips_days, Some(1100));
    assert!(!c.render().contains("hooks.example.com"), "webhook URLs are secrets");
}

#[test]
fn the_tracksolid_account_is_all_five_settings_or_none() {
    assert!(loader().load().expect("loads").tracksolid.is_none());
    let err = loader()
        .env(env_of(&[
            ("FLEETD_TRACKSOLID_URL", "https://eu-open.tracksolidpro.com/route/rest"),
            ("FLEETD_TRACKSOLID_USER", "fleet"),
        ]))
        .load()
        .expect_err("incomplete");
    assert!(err.to_string().contains("tracksolid_app_key (FLEETD_TRACKSOLID_APP_KEY"), "{err}");
    let c = loader()
        .env(env_of(&[
            ("FLEETD_TRACKSOLID_URL", "https://eu-open.tracksolidpro.com/route/rest"),
            ("FLEETD_TRACKSOLID_APP_KEY", "8FB345B8693CCD00"),
            ("FLEETD_TRACKSOLID_APP_SECRET", "vendor-secret"),
            ("FLEETD_TRACKSOLID_USER", "fleet"),
            ("FLEETD_TRACKSOLID_PASSWORD", "vendor-password"),
            ("FLEETD_PUSH_TOKEN", "push-secret-1"),
        ]))
        .load()
        .expect("complete");
    let ts = c.tracksolid.as_ref().expect("configured");
    assert_eq!((ts.user.as_str(), ts.password.expose().as_str()), ("fleet", "vendor-password"));
    let shown = format!("{c:?}\n{}", c.render());
    for secret in ["vendor-secret", "vendor-password", "push-secret-1"] {
        assert!(!shown.contains(secret), "{secret} leaked");
    }
}

#[test]
fn cors_origins_are_an_allow_list_of_exact_origins() {
    assert!(loader().load().expect("loads").http.cors_origins.is_empty(), "off by default");
    let c = loader()
        .env(env_of(&[(
            "FLEETD_CORS_ORIGINS",
            "https://Ops.Example.com, http://127.0.0.1:5173,,https://ops.example.com,http://[::1]:3000",
        )]))
        .load()
        .expect("loads");
    assert_eq!(
        c.http.cors_origins,
        ["https://ops.example.com", "http://127.0.0.1:5173", "http://[::1]:3000"],
        "lowercased, deduplicated"
    );
    for (bad, says) in [
        ("*", "* is not allowed"),
        ("https://*.example.com", "* is not allowed"),
        ("ops.example.com", "is not an origin"),
        ("https://ops.example.com/", "has a path"),
        ("https://ops.example.com/app", "has a path"),
        ("https://ops.example.com:99999", "is not an origin"),
        ("ftp://ops.example.com", "is not an origin"),
    ] {
        let err = loader().env(env_of(&[("FLEETD_CORS_ORIGINS", bad)])).load().expect_err(bad);
        let text = err.to_string();
        assert!(
            text.contains("cors_origins (FLEETD_CORS_ORIGINS") && text.contains(says),
            "{bad}: {text}"
        );
    }
}

#[test]
fn trusted_proxies_are_networks_and_none_by_default() {
    assert!(loader().load().expect("loads").http.trusted_proxies.is_empty(), "none by default");
    let c = loader()
        .env(env_of(&[(
            "FLEETD_TRUSTED_PROXIES",
            "127.0.0.1, 172.18.0.1/16,,fd00::/8,172.18.5.5/16",
        )]))
        .load()
        .expect("loads");
    let shown: Vec<String> = c.http.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["127.0.0.1/32", "172.18.0.0/16", "fd00::/8"], "networks, deduplicated");
    for (bad, says) in [
        ("proxy.local", "is not a network"),
        ("0.0.0.0/0", "every client"),
        ("10.0.0.0/33", "is not a network"),
    ] {
        let err = loader().env(env_of(&[("FLEETD_TRUSTED_PROXIES", bad)])).load().expect_err(bad);
        let text = err.to_string();
        assert!(text.contains("FLEETD_TRUSTED_PROXIES") && text.contains(says), "{bad}: {text}");
    }
}

#[test]
fn http_limits_have_defaults_and_the_reserve_must_leave_a_general_share() {
    let c = loader().load().expect("loads");
    assert_eq!(c.http.max_connections, 8192);
    assert_eq!(c.http.header_timeout.as_secs(), 10);
    assert_eq!(c.http.body_timeout.as_secs(), 30);
    assert_eq!(c.http.send_timeout.as_secs(), 60);
    assert_eq!(c.http.body_memory, 64 << 20);
    assert_eq!((c.http.max_in_flight, c.http.priority_reserve), (1024, 64));
    assert_eq!(c.http.uploads_per_address, 32);
    let one = Loader::new()
        .dotenv(None)
        .env(env_of(&[("FLEETD_HTTP_UPLOADS_PER_ADDRESS", "1")]))
        .load()
        .expect("loads");
    assert_eq!(one.http.uploads_per_address, 1);
    Loader::new()
        .dotenv(None)
        .env(env_of(&[("FLEETD_HTTP_UPLOADS_PER_ADDRESS", "0")]))
        .load()
        .expect_err("at least one body per address");
    assert!(c.http.metrics_token.is_none());
    let err = Loader::new()
        .dotenv(None)
        .env(env_of(&[("FLEETD_HTTP_MAX_IN_FLIGHT", "10"), ("FLEETD_HTTP_PRIORITY_RESERVE", "10")]))
        .load()
        .expect_err("a reserve as large as the limit");
    assert!(err.to_string().contains("FLEETD_HTTP_PRIORITY_RESERVE"), "{err}");
}

#[test]
fn the_metrics_token_is_a_secret() {
    let c = Loader::new()
        .dotenv(None)
        .env(env_of(&[("FLEETD_METRICS_TOKEN", "scrape-token-0123456789")]))
        .load()
        .expect("loads");
    assert_eq!(
        c.http.metrics_token.as_ref().map(|t| t.expose().as_str()),
        Some("scrape-token-0123456789")
    );
    let rendered = c.render();
    assert!(rendered.contains("metrics_token = \"[redacted]\""), "{rendered}");
    assert!(!format!("{c:?}").contains("scrape-token"));
    let short = Loader::new().dotenv(None).env(env_of(&[("FLEETD_METRICS_TOKEN", "short")])).load();
    assert!(short.is_err());
}

#[test]
fn the_log_format_is_text_by_default_or_json() {
    use fleet_config::LogFormat;
    assert_eq!(loader().load().expect("loads").log.format, LogFormat::Text);
    let format_of = |v: &str| loader().env(env_of(&[("FLEETD_LOG_FORMAT", v)])).load();
    assert_eq!(format_of("json").expect("json").log.format, LogFormat::Json);
    assert_eq!(format_of("text").expect("text").log.format, LogFormat::Text);
    // the earlier name of the text format keeps working
    assert_eq!(format_of("human").expect("human").log.format, LogFormat::Text);
    let err = format_of("xml").expect_err("not a format").to_string();
    assert!(err.contains("FLEETD_LOG_FORMAT") && err.contains("text, json"), "{err}");
}

#[test]
fn notification_channels_are_off_until_configured_and_links_default_to_the_listen_address() {
    let c = loader().load().expect("loads");
    assert!(c.notify.email.is_none() && c.notify.sms.is_none() && c.notify.telegram.is_none());
    assert_eq!(c.notify.public_url, "http://127.0.0.1:8080");
    assert_eq!(c.notify.give_up_after, std::time::Duration::from_secs(24 * 3600));
    let c = loader()
        .env(env_of(&[
            ("FLEETD_PUBLIC_URL", "https://fleet.example.com/"),
            ("FLEETD_SMTP_HOST", "smtp.example.com"),
            ("FLEETD_SMTP_SECURITY", "tls"),
            ("FLEETD_SMTP_PORT", "465"),
            ("FLEETD_SMTP_USER", "fleet"),
            ("FLEETD_SMTP_PASSWORD", "smtp-password-xyz"),
            ("FLEETD_SMTP_FROM", "fleetd <fleet@example.com>"),
            ("FLEETD_SMS_USERNAME", "sandbox"),
            ("FLEETD_SMS_API_KEY", "at-api-key-xyz"),
            ("FLEETD_TELEGRAM_BOT_TOKEN", "123456:telegram-token-xyz"),
            ("FLEETD_NOTIFY_GIVE_UP_H", "6"),
        ]))
        .load()
        .expect("loads");
    assert_eq!(c.notify.public_url, "https://fleet.example.com", "no trailing slash");
    let smtp = c.notify.email.as_ref().expect("email");
    assert_eq!((smtp.port, smtp.security), (465, fleet_config::SmtpSecurity::Tls));
    assert_eq!(smtp.credentials.as_ref().map(|c| c.user.as_str()), Some("fleet"));
    let sms = c.notify.sms.as_ref().expect("sms");
    assert_eq!(sms.provider, fleet_config::SmsProvider::AfricasTalking);
    assert_eq!(sms.url, "https://api.africastalking.com");
    let tg = c.notify.telegram.as_ref().expect("telegram");
    assert_eq!(tg.url, "https://api.telegram.org");
    assert_eq!(tg.bot_token.expose(), "123456:telegram-token-xyz");
    assert_eq!(c.notify.give_up_after, std::time::Duration::from_secs(6 * 3600));
    let (debug, rendered) = (format!("{c:?}"), c.render());
    for secret in ["smtp-password-xyz", "at-api-key-xyz", "telegram-token-xyz"] {
        assert!(!debug.contains(secret), "{secret} in Debug");
        assert!(!rendered.contains(secret), "{secret} in fleetd config");
    }
    assert!(rendered.contains("telegram_bot_token = \"[redacted]\""), "{rendered}");
}

#[test]
fn bad_notification_settings_are_refused_by_name() {
    let refused = |pairs: &[(&str, &str)], wanted: &str| {
        let err = loader().env(env_of(pairs)).load().expect_err("refused").to_string();
        assert!(err.contains(wanted), "{wanted:?} not in {err}");
        err
    };
    let smtp = [("FLEETD_SMTP_HOST", "mail.example.com"), ("FLEETD_SMTP_FROM", "a@example.com")];
    let with = |extra: (&'static str, &'static str)| {
        let mut v = smtp.to_vec();
        v.push(extra);
        v
    };
    refused(&with(("FLEETD_SMTP_SECURITY", "ssl")), "smtp_security (FLEETD_SMTP_SECURITY");
    refused(&with(("FLEETD_SMTP_SECURITY", "ssl")), "not one of starttls, tls, plain");
    refused(&with(("FLEETD_SMTP_PORT", "70000")), "smtp_port (FLEETD_SMTP_PORT");
    refused(&with(("FLEETD_SMTP_PORT", "25x")), "is not a whole number");
    refused(&[("FLEETD_SMTP_HOST", "mail.example.com")], "smtp_from (FLEETD_SMTP_FROM");
    refused(&with(("FLEETD_SMTP_FROM", "nobody")), "smtp_from (FLEETD_SMTP_FROM");
    let err =
        refused(&with(("FLEETD_SMTP_PASSWORD", "pw-only-xyz")), "smtp_user (FLEETD_SMTP_USER");
    assert!(!err.contains("pw-only-xyz"), "{err}");
    refused(&[("FLEETD_SMTP_FROM", "a@example.com")], "smtp_host (FLEETD_SMTP_HOST");
    refused(&[("FLEETD_SMS_API_KEY", "k")], "sms_username (FLEETD_SMS_USERNAME");
    refused(&[("FLEETD_SMS_USERNAME", "app")], "sms_api_key (FLEETD_SMS_API_KEY");
    refused(&[("FLEETD_SMS_PROVIDER", "twilio")], "not one of africastalking, generic");
    refused(
        &[("FLEETD_SMS_PROVIDER", "generic"), ("FLEETD_SMS_API_KEY", "k")],
        "sms_url (FLEETD_SMS_URL",
    );
    refused(&[("FLEETD_SMS_URL", "ftp://x")], "sms_url (FLEETD_SMS_URL");
    let err = refused(
        &[("FLEETD_TELEGRAM_BOT_TOKEN", "not-a-token-secretish")],
        "telegram_bot_token (FLEETD_TELEGRAM_BOT_TOKEN",
    );
    assert!(!err.contains("secretish"), "the refusal never shows the token: {err}");
    refused(&[("FLEETD_PUBLIC_URL", "fleet.example.com")], "public_url (FLEETD_PUBLIC_URL");
    refused(&[("FLEETD_NOTIFY_GIVE_UP_H", "0")], "notify_give_up_h (FLEETD_NOTIFY_GIVE_UP_H");
    let c = loader()
        .env(env_of(&[
            ("FLEETD_SMS_PROVIDER", "generic"),
            ("FLEETD_SMS_URL", "http://127.0.0.1:9/sms"),
        ]))
        .load()
        .expect("a generic gateway needs only its URL");
    let sms = c.notify.sms.expect("sms");
    assert_eq!(
        (sms.provider, sms.url.as_str()),
        (fleet_config::SmsProvider::Generic, "http://127.0.0.1:9/sms")
    );
    assert!(sms.api_key.is_none());
}
