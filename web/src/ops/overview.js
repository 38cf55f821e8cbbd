// The Overview section: KPI tiles against the previous period, the charts, and today at a
// glance (vehicles idling now, vehicles not moved today).
import { api, query } from '../common/api.js';
import { esc, minutes, ago, ageOf } from '../common/format.js';
import { previousPeriod, rangeLength, daysOf } from './dates.js';
import { renderTiles } from './kpi-tiles.js';
import { rollupRow, dailyRows, perVehicle, vehicleFilters, inScope } from './reports.js';
import { drawTrend, drawHeatmap, drawIdle, drawAlarmClasses } from './charts.js';
import { loading } from './table.js';

const $ = (id) => document.getElementById(id);

export async function loadOverview(ctx) {
  const { from, to } = ctx.view;
  loading($('tiles'), 'Loading KPIs…');
  const filters = vehicleFilters(ctx);
  const [now, before, daily, trend, alarms] = await Promise.all([
    rollupRow(ctx, { from, to }),
    rollupRow(ctx, previousPeriod({ from, to })),
    dailyRows(ctx),
    api(`/kpis/utilisation-trend${query({ from, to, ...filters })}`),
    api(`/alarms/summary${query({ from, to, ...filters })}`),
    loadGlance(ctx),
  ]);
  if (!ctx.current()) return;
  $('scope-note').textContent = now ? '' : 'No KPI data in this range.';
  renderTiles($('tiles'), now, before, { timeZone: ctx.tz, days: rangeLength(from, to) });
  drawTrend($('chart-trend'), trend);
  drawHeatmap($('chart-heatmap'), daily, daysOf(from, to));
  drawIdle($('chart-idle'), perVehicle(daily));
  drawAlarmClasses($('chart-alarms'), alarms.items);
}

/** Today at a glance; refreshed with the freshness banner as well. */
export async function loadGlance(ctx) {
  const [idle, notMoved] = await Promise.all([api('/fleet/idle'), api('/kpis/not-moved-today')]);
  const idling = idle.filter((v) => inScope(ctx, v));
  const still = notMoved.items.filter((v) => inScope(ctx, v));
  $('idle-count').textContent = `(${idling.length})`;
  $('not-moved-count').textContent = `(${still.length})`;
  $('glance-idle').innerHTML = idling.length
    ? `<ul class="plain" tabindex="0" aria-label="Vehicles idling now">${idling
        .map((v) => `<li data-device="${v.device_id}"><strong>${esc(v.name)}</strong> ${esc(v.driver_name ?? '')} <span class="muted">idling ${esc(minutes(v.duration_s / 60))}</span></li>`)
        .join('')}</ul>`
    : '<p class="empty">No vehicle is idling now.</p>';
  $('glance-not-moved').innerHTML = still.length
    ? `<ul class="plain" tabindex="0" aria-label="Vehicles not moved today">${still
        .map(
          (v) => `<li data-device="${v.device_id}"><strong>${esc(v.name)}</strong>
            <span class="muted">${v.offline ? 'tracker offline' : 'parked'}, last trip ${v.last_trip_end ? esc(ago(ageOf(v.last_trip_end))) : 'never'}</span></li>`,
        )
        .join('')}</ul>`
    : '<p class="empty">Every vehicle has moved today.</p>';
}
