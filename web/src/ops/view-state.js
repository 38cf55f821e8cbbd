// What the page shows — range, cost centre, city, section — lives in the URL query, so a view
// can be reloaded or shared as a link. Invalid values fall back to the defaults.
import { isDate, lastDays, rangeLength } from './dates.js';

/** Longest range the KPI endpoints accept, days. */
const MAX_DAYS = 366;
const SECTIONS = ['overview', 'trips', 'alarms', 'drivers', 'vehicles', 'health', 'notifications'];

export function readViewState(timeZone) {
  const q = new URLSearchParams(location.search);
  let from = q.get('from');
  let to = q.get('to');
  if (!isDate(from) || !isDate(to) || from > to || rangeLength(from, to) > MAX_DAYS) {
    ({ from, to } = lastDays(7, timeZone));
  }
  const tab = SECTIONS.includes(q.get('tab')) ? q.get('tab') : 'overview';
  return { from, to, cost_centre: q.get('cost_centre') || '', city: q.get('city') || '', tab };
}

export function writeViewState(view) {
  const q = new URLSearchParams();
  for (const key of ['from', 'to', 'cost_centre', 'city', 'tab']) if (view[key]) q.set(key, view[key]);
  history.replaceState(null, '', `${location.pathname}?${q}`);
}

export function validRange(from, to) {
  return isDate(from) && isDate(to) && from <= to && rangeLength(from, to) <= MAX_DAYS;
}
