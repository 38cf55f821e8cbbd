// Local days of the fleet's timezone: the pickers hold `YYYY-MM-DD` dates in that zone, while
// the trip and alarm lists take UTC instants, so a day's bounds are converted here.
import { addDays, localDate } from '../common/format.js';

const offsetFormats = new Map();

/** Milliseconds that `timeZone` is ahead of UTC at the instant `ms`. */
function offsetAt(ms, timeZone) {
  let f = offsetFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    offsetFormats.set(timeZone, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, Number(x.value)]));
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The UTC instant (ISO) at which the local day `ymd` starts in `timeZone`. */
export function dayStart(ymd, timeZone) {
  const naive = Date.parse(`${ymd}T00:00:00Z`);
  let ms = naive - offsetAt(naive, timeZone);
  // a second pass settles days whose offset differs from the first guess (DST changes)
  ms = naive - offsetAt(ms, timeZone);
  return new Date(ms).toISOString();
}

/** The last `days` local days up to today: `{from, to}`. */
export function lastDays(days, timeZone, now = new Date()) {
  const to = localDate(now, timeZone);
  return { from: addDays(to, -(days - 1)), to };
}

/** Days in the range, both ends included. */
export function rangeLength(from, to) {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86400000) + 1;
}

/** The period of equal length just before `{from, to}`. */
export function previousPeriod({ from, to }) {
  const n = rangeLength(from, to);
  return { from: addDays(from, -n), to: addDays(from, -1) };
}

/** Every date of the range, in order. */
export function daysOf(from, to) {
  const out = [];
  for (let d = from; d <= to; d = addDays(d, 1)) out.push(d);
  return out;
}

export const isDate = (s) => typeof s === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(s));
