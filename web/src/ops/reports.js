// The KPI reads the sections share, for the chosen range and vehicles.
import { api, query } from '../common/api.js';

/** The view's vehicle filters as query parameters. */
export const vehicleFilters = (ctx) => ({ cost_centre: ctx.view.cost_centre, city: ctx.view.city });

/** The rollup row of `range` for the view's vehicles; null when the range has no data. */
export async function rollupRow(ctx, range) {
  const { items } = await api(`/kpis/rollup${query({ ...range, ...vehicleFilters(ctx) })}`);
  return items[0] ?? null;
}

/** Every `/kpis/daily` row of the view (all pages), by local date then device. */
export async function dailyRows(ctx) {
  const { from, to } = ctx.view;
  const rows = [];
  let after;
  do {
    const page = await api(`/kpis/daily${query({ from, to, ...vehicleFilters(ctx), limit: 5000, after })}`);
    rows.push(...page.items);
    after = page.next_after;
  } while (after);
  return rows;
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
