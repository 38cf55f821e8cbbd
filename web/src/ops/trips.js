// The Trips section: the API's trips of the range, a page at a time (keyset cursors, so
// Previous goes back through the cursors already seen), sortable on the page, and the same
// trips as CSV straight from the API.
import { api, query } from '../common/api.js';
import { addDays, km, minutes, num, localDate, localTime } from '../common/format.js';
import { dayStart } from './dates.js';
import { renderTable, loading } from './table.js';

const PAGE = 50;
const $ = (id) => document.getElementById(id);
let cursors = [undefined]; // cursor of each page seen; the last is the current page's
let nextAfter = null;
let filterKey = '';

export function initTrips(ctx, reload) {
  $('trips-next').addEventListener('click', () => {
    cursors.push(nextAfter);
    reload();
  });
  $('trips-prev').addEventListener('click', () => {
    cursors.pop();
    reload();
  });
}

function filters(ctx) {
  const { from, to, cost_centre, city } = ctx.view;
  return { from: dayStart(from, ctx.tz), to: dayStart(addDays(to, 1), ctx.tz), cost_centre, city };
}

export async function loadTrips(ctx) {
  const f = filters(ctx);
  const key = JSON.stringify(f);
  if (key !== filterKey) {
    cursors = [undefined];
    filterKey = key;
  }
  $('trips-csv').href = `/api/v1/trips${query({ ...f, format: 'csv' })}`;
  const host = $('trips-table');
  loading(host, 'Loading trips…');
  const page = await api(`/trips${query({ ...f, limit: PAGE, after: cursors.at(-1) })}`);
  if (!ctx.current()) return;
  nextAfter = page.next_after;
  $('trips-prev').disabled = cursors.length === 1;
  $('trips-next').disabled = !nextAfter;
  const first = (cursors.length - 1) * PAGE;
  $('trips-status').textContent = page.items.length
    ? `Trips ${first + 1}–${first + page.items.length}${nextAfter ? ' (more on the next page)' : ''}`
    : '';
  const at = (iso) => `${localDate(new Date(iso), ctx.tz)} ${localTime(new Date(iso), ctx.tz)}`;
  renderTable(host, {
    caption: 'Trips in the range',
    empty: 'No trips in this range.',
    rows: page.items,
    rowAttrs: (t) => `data-trip="${t.device_id}/${t.start_time}"`,
    columns: [
      { key: 'vehicle', label: 'Vehicle', value: (t) => t.name },
      { key: 'driver', label: 'Driver', value: (t) => t.driver_name },
      { key: 'start', label: 'Start', value: (t) => t.start_time, text: (t) => at(t.start_time) },
      { key: 'end', label: 'End', value: (t) => t.end_time, text: (t) => at(t.end_time) },
      { key: 'distance', label: 'Distance', numeric: true, value: (t) => t.distance_m, text: (t) => km(t.distance_m / 1000) },
      { key: 'duration', label: 'Duration', numeric: true, value: (t) => t.duration_s, text: (t) => minutes(t.duration_s / 60) },
      { key: 'idle', label: 'Idle', numeric: true, value: (t) => t.idle_s, text: (t) => minutes(t.idle_s / 60) },
      { key: 'max_speed', label: 'Max km/h', numeric: true, value: (t) => t.max_speed_kmh, text: (t) => num(t.max_speed_kmh) },
      { key: 'overspeed', label: 'Overspeeds', numeric: true, value: (t) => t.overspeed_count },
      { key: 'end_reason', label: 'Ended by', value: (t) => t.end_reason.replace('_', ' ') },
    ],
  });
}
