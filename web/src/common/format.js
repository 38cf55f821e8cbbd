// Formatting shared by both apps. Times are shown in the fleet's timezone, not the browser's.

const dateFormats = new Map();

function parts(date, timeZone) {
  let f = dateFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    dateFormats.set(timeZone, f);
  }
  return Object.fromEntries(f.formatToParts(date).map((p) => [p.type, p.value]));
}

/** `YYYY-MM-DD` of `date` in `timeZone`. */
export function localDate(date, timeZone) {
  const p = parts(date, timeZone);
  return `${p.year}-${p.month}-${p.day}`;
}

/** `HH:MM` of `date` in `timeZone`. */
export function localTime(date, timeZone) {
  const p = parts(date, timeZone);
  return `${p.hour}:${p.minute}`;
}

/** `YYYY-MM-DD` `days` after the date string `ymd` (negative: before). */
export function addDays(ymd, days) {
  const d = new Date(`${ymd}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** "just now", "2 min ago", "3 h ago", "4 d ago". */
export function ago(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400 * 2) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Seconds since an ISO time. */
export function ageOf(iso) {
  return (Date.now() - Date.parse(iso)) / 1000;
}

export function km(value, digits = 1) {
  if (value === null || value === undefined) return '—';
  return `${Number(value).toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })} km`;
}

export function minutes(value) {
  if (value === null || value === undefined) return '—';
  const m = Math.round(value);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

export function pct(value, digits = 0) {
  if (value === null || value === undefined) return '—';
  return `${Number(value).toFixed(digits)} %`;
}

export function num(value, digits = 0) {
  if (value === null || value === undefined) return '—';
  return Number(value).toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

const escapes = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe for innerHTML. */
export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => escapes[c]);
}

/** Saves `text` as a download named `name`. */
export function download(name, text, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A stable colour for a category (cost centre, city), from a palette readable on white. */
const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#e6550d', '#17becf', '#8c564b', '#e377c2', '#637939', '#7f7f7f', '#bcbd22', '#393b79'];
export function colourFor(key, keys) {
  if (!key) return '#6b7280';
  const i = keys ? keys.indexOf(key) : -1;
  if (i >= 0) return palette[i % palette.length];
  let h = 0;
  for (const c of key) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return palette[h % palette.length];
}

/** Status colours, also used for the status legend. */
export const statusColours = {
  moving: '#15803d',
  idling: '#b45309',
  parked: '#1d4ed8',
  offline: '#6b7280',
  alarm: '#b91c1c',
};
