//! Streamed exports: rows from a database stream rendered as they arrive (CSV, JSON arrays,
//! GeoJSON, GPX), so a long range is never held in memory. A database error after the
//! response started aborts the body (the client sees a truncated transfer) and is logged; so
//! does a client that stops reading (see [`fetch_owned`] and `export_limit`).

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::stream::{self, BoxStream, StreamExt};

use crate::auth::Principal;
use crate::{ApiError, AppState};

/// Media type of CSV exports.
pub const CSV: &str = "text/csv; charset=utf-8";

/// Rows fetched per body chunk at most (whatever is ready is sent at once).
const CHUNK_ROWS: usize = 512;

/// A row type with a CSV rendering.
pub trait Csv {
    /// The header line, without the line end.
    const HEADER: &'static str;
    /// Appends the row and its line end.
    fn row(&self, out: &mut String);
}

/// Writes one CSV line field by field (RFC 4180: fields with commas, quotes or line breaks are
/// quoted; empty for null).
#[derive(Debug)]
pub struct CsvRow<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> CsvRow<'a> {
    pub fn new(out: &'a mut String) -> Self {
        Self { out, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    pub fn text(&mut self, s: &str) {
        self.sep();
        // a leading =, +, - or @ would run as a formula in spreadsheets
        let formula = s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err();
        if formula || s.contains([',', '"', '\n', '\r']) {
            self.out.push('"');
            if formula {
                self.out.push('\'');
            }
            self.out.push_str(&s.replace('"', "\"\""));
            self.out.push('"');
        } else {
            self.out.push_str(s);
        }
    }

    pub fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.sep(),
        }
    }

    pub fn num(&mut self, n: impl Display) {
        self.sep();
        self.out.push_str(&n.to_string());
    }

    pub fn opt_num<T: Display>(&mut self, n: Option<T>) {
        self.sep();
        if let Some(n) = n {
            self.out.push_str(&n.to_string());
        }
    }

    pub fn time(&mut self, t: DateTime<Utc>) {
        self.sep();
        self.out.push_str(&rfc3339(t));
    }

    pub fn end(self) {
        self.out.push_str("\r\n");
    }
}

/// A time as RFC 3339 UTC with `Z` and only the fractional digits it has.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// What the body sees in place of the next row when its client stopped reading.
const STALLED: &str = "the client stopped reading the export";

/// The rows `query` streams from the pool, fetched as the receiver reads them, for an export by `who`. A task
/// holds the database stream and hands rows over a bounded channel (the stream borrows the
/// pool, the body must not); when the client goes away the channel closes and the task drops
/// the query. When the client stays but stops reading for the stall timeout, the task drops the
/// query too (returning its connection to the pool) and the body ends with an error, so the
/// client sees a truncated transfer rather than a complete-looking file. Fails with 429 when
/// `who` or the process already runs as many exports as allowed.
pub fn fetch_owned<O, Q>(
    state: &AppState,
    who: &Principal,
    query: Q,
) -> Result<BoxStream<'static, Result<O, sqlx::Error>>, ApiError>
where
    O: Send + 'static,
    Q: for<'p> FnOnce(&'p sqlx::PgPool) -> BoxStream<'p, Result<O, sqlx::Error>> + Send + 'static,
{
    let permit = state.exports.begin(who)?;
    let stall = state.exports.limits().stall_timeout;
    let pool = state.pool.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(CHUNK_ROWS);
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = stalled.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let mut rows = query(&pool);
        let mut sent = 0u64;
        while let Some(row) = rows.next().await {
            let failed = row.is_err();
            match tokio::time::timeout(stall, tx.send(row)).await {
                Ok(Ok(())) => sent += 1,
                // the client went away
                Ok(Err(_)) => break,
                Err(_) => {
                    flag.store(true, Ordering::Release);
                    metrics::counter!("fleetd_exports_aborted_total", "reason" => "stalled")
                        .increment(1);
                    tracing::warn!(
                        export.rows = sent,
                        stall_ms = stall.as_millis() as u64,
                        "an export's client stopped reading; the export is abandoned"
                    );
                    break;
                }
            }
            if failed {
                break;
            }
        }
    });
    let rows = stream::unfold((rx, stalled), |(mut rx, stalled)| async move {
        match rx.recv().await {
            Some(row) => Some((row, (rx, stalled))),
            None if stalled.swap(false, Ordering::AcqRel) => {
                Some((Err(sqlx::Error::Protocol(STALLED.to_owned())), (rx, stalled)))
            }
            None => None,
        }
    });
    Ok(rows.boxed())
}

/// A streamed body: `head`, then each row rendered by `render` (told whether it is the first),
/// then `tail`.
pub fn stream_body<T: Send + 'static>(
    rows: BoxStream<'static, Result<T, sqlx::Error>>,
    head: String,
    tail: String,
    mut render: impl FnMut(&T, bool, &mut String) + Send + 'static,
) -> Body {
    let mut first = true;
    let body = rows.ready_chunks(CHUNK_ROWS).map(move |chunk| {
        let mut out = String::new();
        for row in chunk {
            match row {
                Ok(row) => {
                    render(&row, first, &mut out);
                    first = false;
                }
                Err(e) => {
                    // a stalled client was logged where its export was abandoned
                    if !matches!(&e, sqlx::Error::Protocol(m) if m == STALLED) {
                        tracing::error!(error = %e, "an export failed while streaming; the body is cut short");
                    }
                    return Err(std::io::Error::other(e));
                }
            }
        }
        Ok(Bytes::from(out))
    });
    let head = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) });
    let tail = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(tail)) });
    Body::from_stream(head.chain(body).chain(tail))
}

/// A streamed response with its media type, offered for download as `filename`.
pub fn download(body: Body, content_type: &'static str, filename: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let disposition = format!("attachment; filename=\"{}\"", filename.replace(['"', '\\'], "_"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// Every row of `rows` as a CSV download with a header line.
pub fn csv_response<T: Csv + Send + 'static>(
    rows: BoxStream<'static, Result<T, sqlx::Error>>,
    filename: &str,
) -> Response {
    let body =
        stream_body(rows, format!("{}\r\n", T::HEADER), String::new(), |row, _, out| row.row(out));
    download(body, CSV, filename)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = String::new();
        let mut w = CsvRow::new(&mut out);
        w.text("plain");
        w.text("a, \"b\"");
        w.opt_text(None);
        w.num(1.5);
        w.opt_num(None::<i32>);
        w.text("=cmd()");
        w.text("-12.5");
        w.end();
        assert_eq!(out, "plain,\"a, \"\"b\"\"\",,1.5,,\"'=cmd()\",-12.5\r\n");
    }
}
