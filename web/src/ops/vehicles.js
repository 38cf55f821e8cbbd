// The Vehicles section: figures per vehicle (its daily rows summed), per cost centre (the
// grouped rollup), and the distance reconciliation of fleetd against vendor and odometer.
import { api, query } from '../common/api.js';
import { km, minutes, num, pct } from '../common/format.js';
import { dailyRows, perVehicle, vehicleFilters } from './reports.js';
import { renderTable, loading } from './table.js';

/** Vehicle-days of the reconciliation shown; the API lists disagreeing ones first. */
const RECONCILIATION_ROWS = 1000;
const $ = (id) => document.getElementById(id);
const ratio = (v) => (v === null || v === undefined ? '—' : pct(v * 100, 1));
const money = (v, currency) => (v === null || v === undefined ? '—' : `${num(v)} ${currency ?? ''}`.trim());

export async function loadVehicles(ctx) {
  loading($('per-vehicle'));
  loading($('per-cost-centre'));
  loading($('reconciliation'));
  const { from, to } = ctx.view;
  const [daily, groups, reconciliation] = await Promise.all([
    dailyRows(ctx),
    api(`/kpis/rollup${query({ from, to, group_by: 'cost_centre', ...vehicleFilters(ctx) })}`),
    api(`/kpis/reconciliation${query({ from, to, ...vehicleFilters(ctx), limit: RECONCILIATION_ROWS })}`),
  ]);
  if (!ctx.current()) return;
  renderTable($('per-vehicle'), {
    caption: 'Figures per vehicle',
    empty: 'No vehicle data in this range.',
    rows: perVehicle(daily),
    sort: { key: 'distance', dir: 'desc' },
    columns: [
      { key: 'vehicle', label: 'Vehicle', value: (v) => v.name },
      { key: 'cost_centre', label: 'Cost centre', value: (v) => v.cost_centre },
      { key: 'city', label: 'City', value: (v) => v.city },
      { key: 'trips', label: 'Trips', numeric: true, value: (v) => v.trips },
      { key: 'distance', label: 'Distance', numeric: true, value: (v) => v.distance_m, text: (v) => km(v.distance_m / 1000) },
      { key: 'driving', label: 'Driving', numeric: true, value: (v) => v.driving_s, text: (v) => minutes(v.driving_s / 60) },
      { key: 'idle_ratio', label: 'Idle ratio', numeric: true, value: (v) => v.idle_ratio, text: (v) => ratio(v.idle_ratio) },
      { key: 'utilisation', label: 'Utilisation', numeric: true, value: (v) => v.utilisation, text: (v) => ratio(v.utilisation) },
      { key: 'overspeed', label: 'Overspeed /100 km', numeric: true, value: (v) => v.overspeed_per_100km, text: (v) => num(v.overspeed_per_100km, 2) },
      { key: 'idle_cost', label: 'Idle cost', numeric: true, value: (v) => v.idle_cost, text: (v) => money(v.idle_cost, v.currency) },
    ],
  });
  renderTable($('per-cost-centre'), {
    caption: 'Figures per cost centre',
    empty: 'No data in this range.',
    rows: groups.items,
    columns: [
      { key: 'cost_centre', label: 'Cost centre', value: (g) => g.group_key, text: (g) => g.group_key ?? '(none)' },
      { key: 'vehicles', label: 'Vehicles', numeric: true, value: (g) => g.vehicles },
      { key: 'active', label: 'Active', numeric: true, value: (g) => g.vehicles_moved },
      { key: 'distance', label: 'Distance', numeric: true, value: (g) => g.distance_m, text: (g) => km(g.distance_m / 1000) },
      { key: 'driving', label: 'Driving', numeric: true, value: (g) => g.driving_s, text: (g) => minutes(g.driving_s / 60) },
      { key: 'idle_ratio', label: 'Idle ratio', numeric: true, value: (g) => g.idle_ratio, text: (g) => ratio(g.idle_ratio) },
      { key: 'utilisation', label: 'Utilisation', numeric: true, value: (g) => g.utilisation, text: (g) => ratio(g.utilisation) },
      { key: 'score', label: 'Score', numeric: true, value: (g) => g.driving_score, text: (g) => num(g.driving_score, 1) },
      { key: 'idle_cost', label: 'Idle cost', numeric: true, value: (g) => g.idle_cost, text: (g) => money(g.idle_cost, g.currency) },
    ],
  });
  $('reconciliation-note').textContent =
    reconciliation.items.length === RECONCILIATION_ROWS ? `The first ${RECONCILIATION_ROWS} vehicle-days, disagreeing ones first.` : '';
  const dist = (m) => (m === null || m === undefined ? '—' : km(m / 1000));
  renderTable($('reconciliation'), {
    caption: 'Distance reconciliation per vehicle-day',
    empty: 'No distances to compare in this range.',
    rows: reconciliation.items,
    columns: [
      { key: 'vehicle', label: 'Vehicle', value: (r) => r.name },
      { key: 'date', label: 'Day', value: (r) => r.local_date },
      { key: 'fleetd', label: 'fleetd', numeric: true, value: (r) => r.distance_m, text: (r) => dist(r.distance_m) },
      { key: 'vendor', label: 'Vendor', numeric: true, value: (r) => r.vendor_distance_m, text: (r) => dist(r.vendor_distance_m) },
      { key: 'odometer', label: 'Odometer', numeric: true, value: (r) => r.odometer_delta_m, text: (r) => dist(r.odometer_delta_m) },
      {
        key: 'flagged',
        label: 'Disagrees',
        value: (r) => (r.flagged ? 1 : 0),
        html: (r) => (r.flagged ? `<strong class="bad">${[r.vendor_mismatch && 'vendor', r.odometer_mismatch && 'odometer'].filter(Boolean).join(', ')}</strong>` : 'no'),
      },
    ],
  });
}
