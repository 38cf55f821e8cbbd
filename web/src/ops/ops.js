// FleetOps: the operations dashboard. The view (range, cost centre, city, section) is kept in
// the URL; each section loads when it is shown and again after the filters change.
import '../common/base.css';
import './ops.css';
import { api } from '../common/api.js';
import { headerBell, startApp, showError } from '../common/shell.js';
import { openStream } from '../common/stream.js';
import { readViewState, writeViewState, validRange } from './view-state.js';
import { renderFreshness } from './freshness.js';
import { loadOverview, loadGlance } from './overview.js';
import { initTrips, loadTrips } from './trips.js';
import { initAlarms, loadAlarms } from './alarms.js';
import { loadDrivers } from './drivers.js';
import { loadVehicles } from './vehicles.js';
import { initHealth, loadHealth } from './health.js';
import { initTabs } from './tabs.js';
import { loadNotifications } from './notifications.js';

/** How often the freshness banner and today's lists are re-read, ms. */
const REFRESH_MS = 60_000;

const $ = (id) => document.getElementById(id);
const me = await startApp('FleetOps');
// the bell's live feed: no vehicle has id 0, so only this person's notifications (and resets)
// arrive, not the fleet's positions
openStream(
  {
    notification: (e) => headerBell()?.add(e),
    reset: () => headerBell()?.reload(),
  },
  () => {},
  '?device_id=0',
);

try {
  const [settings, devices, live] = await Promise.all([
    api('/settings/analytics'),
    allDevices(),
    api('/fleet/live'),
  ]);
  const tz = settings.global.timezone;
  const view = readViewState(tz);
  const ctx = { me, tz, view, devices, current: () => true };
  fillPickers(ctx, live);

  const loaders = { overview: loadOverview, trips: loadTrips, alarms: loadAlarms, drivers: loadDrivers, vehicles: loadVehicles, health: loadHealth, notifications: loadNotifications };
  const loadedFor = new Map(); // section → the filters it was loaded with
  const generation = new Map(); // section → number of its latest load; older loads draw nothing
  const show = async (section, force = false) => {
    const key = JSON.stringify([view.from, view.to, view.cost_centre, view.city]);
    if (!force && loadedFor.get(section) === key) return;
    loadedFor.set(section, key);
    const mine = (generation.get(section) ?? 0) + 1;
    generation.set(section, mine);
    const current = () => generation.get(section) === mine;
    const panel = $(`panel-${section}`);
    panel.setAttribute('aria-busy', 'true');
    try {
      await loaders[section]({ ...ctx, current });
    } catch (e) {
      if (current()) loadedFor.delete(section);
      showError(`Could not load ${section}: ${e.message}`);
    } finally {
      if (current()) panel.removeAttribute('aria-busy');
    }
  };

  const reload = () => show(view.tab, true);
  initTrips(ctx, reload);
  initAlarms(ctx, reload);
  initHealth(reload);
  initTabs(view.tab, (tab) => {
    view.tab = tab;
    writeViewState(view);
    show(tab);
  });

  $('filters').addEventListener('change', () => {
    const from = $('f-from').value;
    const to = $('f-to').value;
    if (!validRange(from, to)) {
      $('f-note').textContent = 'Pick a start no later than the end, at most 366 days apart.';
      return;
    }
    $('f-note').textContent = '';
    Object.assign(view, { from, to, cost_centre: $('f-cost-centre').value, city: $('f-city').value });
    writeViewState(view);
    loadedFor.clear();
    show(view.tab);
  });
  $('filters').addEventListener('submit', (e) => e.preventDefault());

  writeViewState(view);
  refreshFreshness(ctx);
  setInterval(() => refreshFreshness(ctx, view.tab === 'overview'), REFRESH_MS);
} catch (e) {
  showError(`FleetOps could not start: ${e.message}`);
}

async function refreshFreshness(ctx, glance = false) {
  try {
    const [{ items }] = await Promise.all([api('/health/ingest'), glance ? loadGlance(ctx) : null]);
    renderFreshness($('freshness'), items);
  } catch (e) {
    showError(`Could not check data freshness: ${e.message}`);
  }
}

async function allDevices() {
  const out = [];
  let after;
  do {
    const page = await api(`/devices?limit=500${after ? `&after=${after}` : ''}`);
    out.push(...page.items);
    after = page.next_after;
  } while (after);
  return out;
}

/** Cost centres and cities from the registry and the live fleet; the URL's choice kept selected. */
function fillPickers(ctx, live) {
  const { view } = ctx;
  $('f-from').value = view.from;
  $('f-to').value = view.to;
  const distinct = (values) => [...new Set(values.filter(Boolean))].sort((a, b) => a.localeCompare(b));
  fill($('f-cost-centre'), distinct([...ctx.devices.map((d) => d.cost_centre), ...live.features.map((f) => f.properties.cost_centre), view.cost_centre]), view.cost_centre);
  fill($('f-city'), distinct([...ctx.devices.map((d) => d.city), ...live.features.map((f) => f.properties.city), view.city]), view.city);
}

function fill(select, values, selected) {
  for (const v of values) select.add(new Option(v, v, false, v === selected));
}
