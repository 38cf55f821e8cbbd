// The KPI reads the sections share, for the chosen range and vehicles. Where this fleetd's
// rollup cannot filter by cost centre or city, the matching group of a grouped rollup is used:
// the same figures, since groups are summed from the same vehicle-days.
import { api, query } from '../common/api.js';

/** The rollup row of `range` for the view's vehicles (null without data) and a note on scope. */
export async function rollupRow(ctx, range) {
  const { cost_centre, city } = ctx.view;
  if (ctx.caps.accepts('/kpis/rollup', 'cost_centre')) {
    const { items } = await api(`/kpis/rollup${query({ ...range, cost_centre, city })}`);
    return { row: items[0] ?? null, note: '' };
  }
  const [groupBy, key] = cost_centre ? ['cost_centre', cost_centre] : city ? ['city', city] : ['fleet', 'fleet'];
  const { items } = await api(`/kpis/rollup${query({ ...range, group_by: groupBy })}`);
  const row = items.find((r) => (r.group_key ?? '').toLowerCase() === key.toLowerCase()) ?? null;
  const note =
    cost_centre && city ? `The KPI tiles cover cost centre ${cost_centre} in every city: this server's rollup groups by one field only.` : '';
  return { row, note };
}

/** Every `/kpis/daily` row of the view (all pages), by local date then device. */
export async function dailyRows(ctx) {
  const { from, to, cost_centre, city } = ctx.view;
  const rows = [];
  let after;
  do {
    const page = await api(`/kpis/daily${query({ from, to, cost_centre, city, limit: 5000, after })}`);
    rows.push(...page.items);
    after = page.next_after;
  } while (after);
  return rows;
}

/** Query parameters of the view's vehicle filters, for routes that take them. */
export function vehicleFilters(ctx, path) {
  const { cost_centre, city } = ctx.view;
  return {
    cost_centre: ctx.caps.accepts(path, 'cost_centre') ? cost_centre : undefined,
    city: ctx.caps.accepts(path, 'city') ? city : undefined,
  };
}

/** Whether a row with `cost_centre` and `city` fields matches the view's filters. */
export function inScope(ctx, row) {
  const same = (a, b) => !b || (a ?? '').toLowerCase() === b.toLowerCase();
  return same(row.cost_centre, ctx.view.cost_centre) && same(row.city, ctx.view.city);
}

/**
 * Per-vehicle sums of daily rows, ratios recomputed from the sums as the rollup does
 * (docs/KPI_FRAMEWORK.md, "Rollups"): never an average of daily ratios.
 */
export function perVehicle(rows) {
  const byDevice = new Map();
  for (const r of rows) {
    let v = byDevice.get(r.device_id);
    if (!v) {
      v = {
        device_id: r.device_id, name: r.name, plate: r.plate, cost_centre: r.cost_centre, city: r.city,
        currency: r.currency, days: 0, trips: 0, distance_m: 0, driving_s: 0, shift_s: 0, shift_driving_s: 0,
        overspeed_count: 0, idle_s: null, engine_on_s: null, idle_cost: null,
      };
      byDevice.set(r.device_id, v);
    }
    v.days += 1;
    for (const k of ['trips', 'distance_m', 'driving_s', 'shift_s', 'shift_driving_s', 'overspeed_count']) v[k] += r[k] ?? 0;
    // parts unknown without ACC stay out of the sums, as in the rollup
    for (const k of ['idle_s', 'engine_on_s', 'idle_cost']) if (r[k] !== null) v[k] = (v[k] ?? 0) + r[k];
  }
  return [...byDevice.values()].map((v) => ({
    ...v,
    idle_ratio: v.engine_on_s ? v.idle_s / v.engine_on_s : null,
    utilisation: v.shift_s ? v.shift_driving_s / v.shift_s : null,
    overspeed_per_100km: v.distance_m > 0 ? v.overspeed_count / (v.distance_m / 100000) : null,
  }));
}

/** Fleet figures per day from daily rows (for filtered views on servers without a filtered trend). */
export function perDay(rows) {
  const byDay = new Map();
  for (const r of rows) {
    const d = byDay.get(r.local_date) ?? { local_date: r.local_date, distance_m: 0, shift_s: 0, shift_driving_s: 0 };
    d.distance_m += r.distance_m ?? 0;
    d.shift_s += r.shift_s ?? 0;
    d.shift_driving_s += r.shift_driving_s ?? 0;
    byDay.set(r.local_date, d);
  }
  return [...byDay.values()]
    .sort((a, b) => a.local_date.localeCompare(b.local_date))
    .map((d) => ({ ...d, utilisation: d.shift_s ? d.shift_driving_s / d.shift_s : null }));
}
