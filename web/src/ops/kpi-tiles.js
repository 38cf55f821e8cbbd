// The KPI tiles: each shows a column of the rollup row (docs/KPI_FRAMEWORK.md) as the API
// returned it — the raw number in `data-value`, formatted for reading — and its change against
// the previous period of equal length. Whether up is good depends on the KPI.
import { esc, km, localDate, localTime, minutes, num, pct, ago, ageOf } from '../common/format.js';

/** better: which direction of change is an improvement ('up', 'down'), or null for none. */
const TILES = [
  { key: 'distance', label: 'Distance', column: 'distance_m', better: 'up', text: (v) => km(v / 1000) },
  { key: 'driving', label: 'Driving time', column: 'driving_s', better: 'up', text: (v) => minutes(v / 60) },
  { key: 'idle_ratio', label: 'Idle ratio', column: 'idle_ratio', better: 'down', text: (v) => pct(v * 100, 1) },
  { key: 'utilisation', label: 'Utilisation', column: 'utilisation', better: 'up', text: (v) => pct(v * 100, 1) },
  { key: 'overspeed', label: 'Overspeed per 100 km', column: 'overspeed_per_100km', better: 'down', text: (v) => num(v, 2) },
  { key: 'score', label: 'Driving score', column: 'driving_score', better: 'up', text: (v) => num(v, 1) },
  { key: 'active', label: 'Active vehicles', column: 'vehicles_moved', better: 'up', text: (v) => num(v) },
  { key: 'not_moved', label: 'Vehicle-days not moved', column: 'vehicle_days_not_moved', better: 'down', text: (v) => num(v) },
  { key: 'idle_cost', label: 'Idle cost', column: 'idle_cost', better: 'down', text: (v, row) => `${num(v)} ${row.currency ?? ''}`.trim() },
];

/** Renders the tiles of `row` (null: no data) compared with `prev` into `host`. */
export function renderTiles(host, row, prev, { timeZone, days }) {
  const tiles = TILES.map((t) => {
    const v = row?.[t.column] ?? null;
    const text = v === null ? '—' : t.text(v, row);
    return tile(t.key, t.label, v, text, change(t, v, prev?.[t.column] ?? null, days));
  });
  const last = row?.last_fix_time ?? null;
  tiles.push(
    tile(
      'freshness',
      'Data freshness (newest fix)',
      last,
      last ? `${localDate(new Date(last), timeZone)} ${localTime(new Date(last), timeZone)}` : '—',
      last ? `<span class="muted">${esc(ago(ageOf(last)))}</span>` : '',
    ),
  );
  host.innerHTML = tiles.join('');
}

function tile(key, label, value, text, delta) {
  return `<div class="tile kpi" data-kpi="${key}" data-value="${esc(value ?? '')}">
    <div class="label">${esc(label)}</div>
    <div class="value">${esc(text)}</div>
    <div class="delta">${delta}</div>
  </div>`;
}

/** "▲ 12.3 %" against the previous period, coloured and worded as better or worse. */
function change(t, now, before, days) {
  const period = `previous ${days} ${days === 1 ? 'day' : 'days'}`;
  if (now === null || before === null || before === 0) return `<span class="muted">no figure for the ${period}</span>`;
  const p = ((now - before) / Math.abs(before)) * 100;
  if (Math.abs(p) < 0.05) return `<span class="muted">= ${period}</span>`;
  const up = p > 0;
  const good = t.better === (up ? 'up' : 'down');
  return `<span class="${good ? 'good' : 'bad'}"><span aria-hidden="true">${up ? '▲' : '▼'}</span>
    <span class="visually-hidden">${up ? 'up' : 'down'}</span> ${Math.abs(p).toFixed(1)} %
    <span class="visually-hidden">(${good ? 'better' : 'worse'})</span></span> <span class="muted">vs ${period}</span>`;
}
