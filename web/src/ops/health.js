// The Health section: each ingest job (`/health/ingest`) and each device's freshness
// (`/health/devices`, a page at a time).
import { api, query } from '../common/api.js';
import { ago, ageOf, esc, num, pct } from '../common/format.js';
import { renderFreshness } from './freshness.js';
import { renderTable, loading } from './table.js';

const PAGE = 50;
const $ = (id) => document.getElementById(id);
let cursors = [undefined];
let nextAfter = null;

export function initHealth(reload) {
  $('devices-next').addEventListener('click', () => {
    cursors.push(nextAfter);
    reload();
  });
  $('devices-prev').addEventListener('click', () => {
    cursors.pop();
    reload();
  });
}

const status = (s) => `<span class="status status-${esc(s)}">${esc(s.replace('_', ' '))}</span>`;
const since = (iso) => (iso ? ago(ageOf(iso)) : 'never');

export async function loadHealth(ctx) {
  loading($('ingest-health'));
  loading($('device-health'));
  const [jobs, devices] = await Promise.all([
    api('/health/ingest'),
    api(`/health/devices${query({ limit: PAGE, after: cursors.at(-1) })}`),
  ]);
  if (!ctx.current()) return;
  renderFreshness($('freshness'), jobs.items);
  nextAfter = devices.next_after;
  $('devices-prev').disabled = cursors.length === 1;
  $('devices-next').disabled = !nextAfter;
  renderTable($('ingest-health'), {
    caption: 'Ingest jobs',
    empty: 'No ingest job has run yet.',
    rows: jobs.items,
    columns: [
      { key: 'job', label: 'Job', value: (j) => j.job },
      { key: 'status', label: 'Status', value: (j) => j.status, html: (j) => status(j.status) },
      { key: 'last_success', label: 'Last success', value: (j) => j.last_success_at, text: (j) => since(j.last_success_at) },
      { key: 'failures', label: 'Failures in a row', numeric: true, value: (j) => j.consecutive_failures },
      { key: 'rows', label: 'Rows / h', numeric: true, value: (j) => j.rows_per_hour, text: (j) => num(j.rows_per_hour) },
      { key: 'lag', label: 'Lag', numeric: true, value: (j) => j.lag_s, text: (j) => (j.lag_s === null ? '—' : `${num(j.lag_s)} s`) },
      { key: 'duplicates', label: 'Duplicates', numeric: true, value: (j) => j.duplicate_rate, text: (j) => (j.duplicate_rate === null ? '—' : pct(j.duplicate_rate * 100, 1)) },
      { key: 'error', label: 'Last error', value: (j) => j.last_error, text: (j) => j.last_error ?? '' },
    ],
  });
  renderTable($('device-health'), {
    caption: 'Device freshness',
    empty: 'No active devices.',
    rows: devices.items,
    columns: [
      { key: 'vehicle', label: 'Vehicle', value: (d) => d.name },
      { key: 'status', label: 'Status', value: (d) => d.status, html: (d) => status(d.status) },
      { key: 'last_fix', label: 'Newest fix', value: (d) => d.last_gps_time, text: (d) => since(d.last_gps_time) },
      { key: 'fixes', label: 'Fixes (24 h)', numeric: true, value: (d) => d.fixes_24h },
      { key: 'delay50', label: 'Delay p50', numeric: true, value: (d) => d.delay_p50_s, text: (d) => (d.delay_p50_s === null ? '—' : `${num(d.delay_p50_s)} s`) },
      { key: 'delay95', label: 'Delay p95', numeric: true, value: (d) => d.delay_p95_s, text: (d) => (d.delay_p95_s === null ? '—' : `${num(d.delay_p95_s)} s`) },
      { key: 'city', label: 'City', value: (d) => d.city },
    ],
  });
}
