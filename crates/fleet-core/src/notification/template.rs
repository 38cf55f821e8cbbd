//! How messages are worded: one place for every channel's form of an event. The subject, text
//! and HTML go by e-mail (the text also to Telegram), the short form by SMS, the payload to
//! webhooks as JSON. Each says which vehicle, what happened, where, when (in the fleet's
//! timezone, formatted by the caller) and links to the moment in FleetNow.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::{Channel, EventKind, Facts, Severity};

/// What a message is rendered from: the event, the vehicle as people know it, and the time
/// already formatted in the fleet's timezone (`Tue 5 Dec 23:14 EAT`).
#[derive(Debug, Clone)]
pub struct MessageInput<'a> {
    pub event_id: i64,
    pub kind: EventKind,
    pub severity: Severity,
    /// The rule that matched; `None` for messages sent without one.
    pub rule_name: Option<String>,
    pub facts: &'a Facts,
    pub device_id: i32,
    pub vehicle_name: String,
    pub plate: Option<String>,
    pub driver: Option<String>,
    pub event_time: DateTime<Utc>,
    pub local_time: String,
    /// The fleet's timezone name (`Africa/Nairobi`).
    pub timezone: String,
    /// Where the message points, usually [`event_link`].
    pub link: String,
}

/// One message in every channel's form.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// For SMS: at most 160 GSM-7 characters (70 when the text needs Unicode) whenever the
    /// vehicle's name and what happened fit.
    pub short: String,
    pub webhook: WebhookPayload,
}

/// The JSON body of a webhook delivery (signed: see `X-Fleetd-Signature`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookPayload {
    /// True for a test message sent from FleetOps; it has no event, kind or device.
    pub test: bool,
    pub event_id: Option<i64>,
    pub kind: Option<EventKind>,
    pub severity: Severity,
    /// What happened, in a few words (`SOS alarm`, `Entered Depot`).
    pub title: String,
    pub device: Option<WebhookDevice>,
    /// When it happened, UTC, RFC 3339.
    pub time: DateTime<Utc>,
    /// The same moment in the fleet's timezone, as people read it.
    pub local_time: String,
    pub timezone: String,
    pub facts: Facts,
    /// The moment in FleetNow.
    pub link: String,
    /// The rule that matched.
    pub rule: Option<String>,
}

/// The vehicle a webhook payload is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDevice {
    pub id: i32,
    pub name: String,
    pub plate: Option<String>,
    pub driver: Option<String>,
}

/// The FleetNow address of a vehicle at a moment: `<public_url>/now/?device=<id>&at=<rfc3339>`.
pub fn event_link(public_url: &str, device_id: i32, at: DateTime<Utc>) -> String {
    format!(
        "{}/now/?device={device_id}&at={}",
        public_url.trim_end_matches('/'),
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// A moment in the fleet's timezone as messages show it: `Sat 5 Dec 23:14 EAT`. `local` is the
/// wall-clock time there (PostgreSQL's `at time zone`), `zone` its abbreviation or name.
pub fn local_time_text(local: NaiveDateTime, zone: &str) -> String {
    let text = local.format("%a %-d %b %H:%M").to_string();
    match zone.trim() {
        "" => text,
        zone => format!("{text} {zone}"),
    }
}

/// What happened, in a few words: `SOS alarm`, `Entered Depot`, `Offline for 45 min`.
pub fn headline(kind: EventKind, f: &Facts) -> String {
    let dur = |s: Option<i64>| s.filter(|s| *s > 0).map(duration);
    match kind {
        k if k.is_alarm() => {
            let name = f
                .alarm_name
                .as_deref()
                .or(f.alarm_type.as_deref())
                .map(str::trim)
                .filter(|n| !n.is_empty());
            let mut text = match name {
                Some(n) if n.to_ascii_lowercase().contains("alarm") => n.to_owned(),
                Some(n) => format!("{n} alarm"),
                None => alarm_class_name(k).to_owned(),
            };
            if k == EventKind::AlarmDriving {
                if let Some(v) = f.speed_kmh.filter(|v| *v > 0.0) {
                    text.push_str(&format!(" ({v:.0} km/h)"));
                }
            }
            text
        }
        EventKind::GeofenceEnter => format!("Entered {}", geofence(f)),
        EventKind::GeofenceExit => format!("Left {}", geofence(f)),
        EventKind::Overspeed => {
            let mut text = "Overspeed".to_owned();
            if let Some(top) = f.max_speed_kmh.or(f.speed_kmh) {
                text.push_str(&format!(" {top:.0} km/h"));
            }
            if let Some(limit) = f.limit_kmh {
                text.push_str(&format!(" (limit {limit:.0})"));
            }
            if let Some(d) = dur(f.duration_s) {
                text.push_str(&format!(" for {d}"));
            }
            text
        }
        EventKind::AfterHours => match f.speed_kmh.filter(|v| *v > 0.0) {
            Some(v) => format!("Moving after hours ({v:.0} km/h)"),
            None => "Moving after hours".to_owned(),
        },
        EventKind::Idling => match dur(f.duration_s) {
            Some(d) => format!("Idling for {d}"),
            None => "Idling".to_owned(),
        },
        EventKind::Offline => match dur(f.duration_s.or(f.threshold_s)) {
            Some(d) => format!("Offline for {d}"),
            None => "Offline".to_owned(),
        },
        EventKind::Online => match dur(f.duration_s) {
            Some(d) => format!("Back online after {d}"),
            None => "Back online".to_owned(),
        },
        EventKind::NotMoved => match f.threshold_s.filter(|s| (0..86_400).contains(s)) {
            Some(s) => format!("Not moved by {:02}:{:02}", s / 3600, s % 3600 / 60),
            None => "Not moved today".to_owned(),
        },
        EventKind::PowerLost => match f.external_v {
            Some(v) => format!("External power lost (was {v:.1} V)"),
            None => "External power lost".to_owned(),
        },
        // every alarm kind is handled above
        _ => alarm_class_name(kind).to_owned(),
    }
}

fn alarm_class_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::AlarmSafety => "Safety alarm",
        EventKind::AlarmSecurity => "Security alarm",
        EventKind::AlarmPower => "Power alarm",
        EventKind::AlarmDriving => "Driving alarm",
        EventKind::AlarmGeofence => "Geofence alarm",
        EventKind::AlarmDevice => "Tracker alarm",
        _ => "Alarm",
    }
}

fn geofence(f: &Facts) -> String {
    match (f.geofence_name.as_deref().map(str::trim).filter(|n| !n.is_empty()), f.geofence_id) {
        (Some(name), _) => name.to_owned(),
        (None, Some(id)) => format!("geofence #{id}"),
        (None, None) => "a geofence".to_owned(),
    }
}

/// `45 s`, `12 min`, `2 h 5 min`, `3 d 4 h`.
fn duration(s: i64) -> String {
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => match s % 3600 / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        s => match s % 86_400 / 3600 {
            0 => format!("{} d", s / 86_400),
            h => format!("{} d {h} h", s / 86_400),
        },
    }
}

/// Where it happened, for people: the geofence's name (unless the headline already says it)
/// and the coordinates, `digits` decimals.
fn place(kind: EventKind, f: &Facts, digits: usize, sep: &str) -> Option<String> {
    let coords = match (f.lat, f.lon) {
        (Some(lat), Some(lon)) if lat.is_finite() && lon.is_finite() => {
            Some(format!("{lat:.digits$}{sep}{lon:.digits$}"))
        }
        _ => None,
    };
    let in_headline = matches!(kind, EventKind::GeofenceEnter | EventKind::GeofenceExit);
    let name = f.geofence_name.as_deref().map(str::trim).filter(|n| !n.is_empty() && !in_headline);
    match (name, coords) {
        (Some(n), Some(c)) => Some(format!("{n} ({c})")),
        (Some(n), None) => Some(n.to_owned()),
        (None, c) => c,
    }
}

fn vehicle_name(input: &MessageInput<'_>) -> String {
    match input.vehicle_name.trim() {
        "" => format!("Vehicle {}", input.device_id),
        name => name.to_owned(),
    }
}

/// The plate, when there is one and the name does not already say it.
fn plate(input: &MessageInput<'_>, name: &str) -> Option<String> {
    input
        .plate
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty() && !name.contains(p))
        .map(str::to_owned)
}

/// Renders one event for every channel.
pub fn render(input: &MessageInput<'_>) -> Rendered {
    let what = headline(input.kind, input.facts);
    let name = vehicle_name(input);
    let plate = plate(input, &name);
    let driver = input.driver.as_deref().map(str::trim).filter(|d| !d.is_empty());
    let vehicle = match &plate {
        Some(p) => format!("{name} ({p})"),
        None => name.clone(),
    };
    let place_long = place(input.kind, input.facts, 5, ", ");
    let utc = input.event_time.to_rfc3339_opts(SecondsFormat::Secs, true);
    let when = format!("{} ({utc})", input.local_time);

    let subject = match input.severity {
        Severity::Critical => format!("CRITICAL: {vehicle}: {what}"),
        Severity::Warning | Severity::Info => format!("{vehicle}: {what}"),
    };

    let mut rows: Vec<(&str, String)> = vec![("Vehicle", vehicle.clone())];
    if let Some(d) = driver {
        rows.push(("Driver", d.to_owned()));
    }
    rows.push(("What", what.clone()));
    if let Some(v) = input.facts.speed_kmh.filter(|_| input.kind != EventKind::AlarmDriving) {
        rows.push(("Speed", format!("{v:.0} km/h")));
    }
    rows.push(("Where", place_long.clone().unwrap_or_else(|| "position unknown".to_owned())));
    rows.push(("When", when));
    if let Some(rule) = &input.rule_name {
        rows.push(("Rule", format!("{rule} ({})", input.severity.as_str())));
    }

    let mut text = format!("{what} — {vehicle}\n\n");
    for (label, value) in &rows {
        text.push_str(&format!("{label}: {value}\n"));
    }
    text.push_str(&format!("\nOpen in fleetd: {}\n", input.link));

    let html = html(&what, &rows, &input.link, "Open in fleetd");

    let short = short_form(&ShortParts {
        name: &name,
        plate: plate.as_deref(),
        what: &what,
        place: place(input.kind, input.facts, 4, ",").as_deref(),
        time: &input.local_time,
        link: &input.link,
    });

    let webhook = WebhookPayload {
        test: false,
        event_id: Some(input.event_id),
        kind: Some(input.kind),
        severity: input.severity,
        title: what.clone(),
        device: Some(WebhookDevice {
            id: input.device_id,
            name,
            plate: input.plate.clone().filter(|p| !p.trim().is_empty()),
            driver: driver.map(str::to_owned),
        }),
        time: input.event_time,
        local_time: input.local_time.clone(),
        timezone: input.timezone.clone(),
        facts: input.facts.clone(),
        link: input.link.clone(),
        rule: input.rule_name.clone(),
    };

    Rendered { subject, text, html, short, webhook }
}

/// A test message for the "send test" actions: says who sent it and over which channel, so
/// the person receiving it knows the channel works.
pub fn render_test(
    channel: Channel,
    who: &str,
    at: DateTime<Utc>,
    local_time: &str,
    timezone: &str,
    link: &str,
) -> Rendered {
    let who = match who.trim() {
        "" => "an administrator",
        w => w,
    };
    let title = "fleetd test message".to_owned();
    let line = format!(
        "This is a test of the {} channel, sent by {who} at {local_time}.",
        channel.as_str()
    );
    let text =
        format!("{title}\n\n{line}\nIf you can read it, notifications reach you here.\n\n{link}\n");
    let rows = vec![
        ("Channel", channel.as_str().to_owned()),
        ("Sent by", who.to_owned()),
        ("When", format!("{local_time} ({})", at.to_rfc3339_opts(SecondsFormat::Secs, true))),
    ];
    let html = html(&title, &rows, link, "Open fleetd");
    let short = short_form(&ShortParts {
        name: "fleetd",
        plate: None,
        what: &format!("test message from {who}"),
        place: None,
        time: local_time,
        link,
    });
    Rendered {
        subject: title.clone(),
        text,
        html,
        short,
        webhook: WebhookPayload {
            test: true,
            event_id: None,
            kind: None,
            severity: Severity::Info,
            title,
            device: None,
            time: at,
            local_time: local_time.to_owned(),
            timezone: timezone.to_owned(),
            facts: Facts::default(),
            link: link.to_owned(),
            rule: None,
        },
    }
}

fn html(title: &str, rows: &[(&str, String)], link: &str, link_text: &str) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html><body style=\"font-family:Arial,Helvetica,sans-serif;color:#1a1a1a\">\n",
    );
    out.push_str(&format!(
        "<h2 style=\"margin:0 0 12px\">{}</h2>\n<table cellpadding=\"4\">\n",
        escape(title)
    ));
    for (label, value) in rows {
        out.push_str(&format!(
            "<tr><th align=\"left\" style=\"color:#555\">{}</th><td>{}</td></tr>\n",
            escape(label),
            escape(value)
        ));
    }
    out.push_str(&format!(
        "</table>\n<p><a href=\"{}\">{}</a></p>\n</body></html>\n",
        escape(link),
        escape(link_text)
    ));
    out
}

/// Text made safe for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

struct ShortParts<'a> {
    name: &'a str,
    plate: Option<&'a str>,
    what: &'a str,
    place: Option<&'a str>,
    time: &'a str,
    link: &'a str,
}

/// The SMS form, `Lorry 7 (KBX 123A): SOS alarm, Tue 5 Dec 23:14 EAT, at -1.2863,36.8172
/// <link>`, made to fit one SMS by leaving out the least needed parts first: the link, the
/// place, the plate; then the headline and the name are shortened. Vehicle, what and when stay.
fn short_form(p: &ShortParts<'_>) -> String {
    let compose = |name: &str, plate: Option<&str>, what: &str, place: Option<&str>, link: bool| {
        let mut s = match plate {
            Some(pl) => format!("{name} ({pl}): {what}, {}", p.time),
            None => format!("{name}: {what}, {}", p.time),
        };
        if let Some(pl) = place {
            s.push_str(&format!(", at {pl}"));
        }
        if link && !p.link.is_empty() {
            s.push(' ');
            s.push_str(p.link);
        }
        s
    };
    let attempts = [
        compose(p.name, p.plate, p.what, p.place, true),
        compose(p.name, p.plate, p.what, p.place, false),
        compose(p.name, p.plate, p.what, None, false),
        compose(p.name, None, p.what, None, false),
    ];
    if let Some(fit) = attempts.into_iter().find(|s| fits_one_sms(s)) {
        return fit;
    }
    // shorten the name to 20 characters, then the headline as far as needed
    let name = cut(p.name, 20);
    for keep in (8..=p.what.chars().count()).rev() {
        let s = compose(&name, None, &cut(p.what, keep), None, false);
        if fits_one_sms(&s) {
            return s;
        }
    }
    let s = compose(&name, None, &cut(p.what, 8), None, false);
    let budget = if gsm7_len(&s).is_some() { 160 } else { 70 };
    cut(&s, budget)
}

/// `s` cut to `max` characters, the cut marked with `...` (GSM-7 has no ellipsis).
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let keep: String = s.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", keep.trim_end())
}

/// Whether `s` fits one SMS: 160 GSM-7 septets, or 70 UCS-2 units when it needs Unicode.
pub fn fits_one_sms(s: &str) -> bool {
    match gsm7_len(s) {
        Some(n) => n <= 160,
        None => s.encode_utf16().count() <= 70,
    }
}

/// The length of `s` in GSM-7 septets (characters of the extension table take two), or `None`
/// when it has characters GSM-7 cannot carry.
pub fn gsm7_len(s: &str) -> Option<usize> {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const EXTENDED: &str = "^{}\\[~]|€\u{c}";
    s.chars().try_fold(0usize, |n, c| {
        if BASIC.contains(c) {
            Some(n + 1)
        } else if EXTENDED.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests;
