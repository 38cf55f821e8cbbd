// The Drivers section: the driving-score leaderboard of the range (`/kpis/leaderboard`).
import { api, query } from '../common/api.js';
import { km, minutes, num } from '../common/format.js';
import { vehicleFilters } from './reports.js';
import { renderTable, loading } from './table.js';

export async function loadDrivers(ctx) {
  const host = document.getElementById('leaderboard');
  loading(host, 'Loading the leaderboard…');
  const { from, to } = ctx.view;
  const rows = await api(`/kpis/leaderboard${query({ from, to, ...vehicleFilters(ctx) })}`);
  if (!ctx.current()) return;
  renderTable(host, {
    caption: 'Vehicles ranked by driving score',
    empty: 'No driving in this range.',
    rows,
    columns: [
      { key: 'rank', label: 'Rank', numeric: true, value: (r) => r.rank },
      { key: 'driver', label: 'Driver', value: (r) => r.driver_name },
      { key: 'vehicle', label: 'Vehicle', value: (r) => r.name },
      { key: 'score', label: 'Score', numeric: true, value: (r) => r.driving_score, text: (r) => num(r.driving_score, 1) },
      { key: 'distance', label: 'Distance', numeric: true, value: (r) => r.distance_m, text: (r) => km(r.distance_m / 1000) },
      { key: 'driving', label: 'Driving', numeric: true, value: (r) => r.driving_s, text: (r) => minutes(r.driving_s / 60) },
      { key: 'overspeed', label: 'Overspeed /100 km', numeric: true, value: (r) => r.overspeed_per_100km, text: (r) => num(r.overspeed_per_100km, 2) },
      { key: 'harsh', label: 'Harsh /100 km', numeric: true, value: (r) => r.harsh_per_100km, text: (r) => num(r.harsh_per_100km, 2) },
      { key: 'days', label: 'Days', numeric: true, value: (r) => r.days },
    ],
  });
}
