// FleetNow: the live map. Loads the fleet once (/fleet/live), then follows the stream; the
// map, the list and the dock redraw what changed once a second.
import '../common/base.css';
import './now.css';
import { api, pageConfig, query } from '../common/api.js';
import { headerBell, showError, startApp } from '../common/shell.js';
import { localDate } from '../common/format.js';
import { Dock } from './dock.js';
import { Filters } from './filters.js';
import { VehicleList } from './list.js';
import { FleetMap } from './map.js';
import { FleetStore } from './store.js';
import { openStream } from '../common/stream.js';

/** Alarms younger than this and not acknowledged put a vehicle "in alarm". */
const OPEN_ALARM_WINDOW_MS = 24 * 3600 * 1000;

await startApp('FleetNow');
const main = document.getElementById('main');
main.innerHTML = `
  <div class="now-layout">
    <section id="map-pane" class="map-pane" aria-label="Live map">
      <div id="map" class="map" data-testid="map"></div>
      <p class="stream-state" data-testid="stream-state" role="status"></p>
    </section>
    <aside id="dock" class="dock" aria-label="Vehicle details" hidden></aside>
    <aside id="side" class="side" aria-label="Vehicles"></aside>
  </div>`;

const store = new FleetStore();
const filters = new Filters();
const visible = (v) => filters.matches(v);
const fleetMap = new FleetMap(document.getElementById('map'), pageConfig(), store, select);
const list = new VehicleList(document.getElementById('side'), store, filters, {
  select,
  filtersChanged() {
    list.applyFilters();
    fleetMap.refilter(visible);
  },
  colourModeChanged(mode) {
    fleetMap.setColourMode(mode, store.values('costCentre').filter(Boolean));
  },
});
const settings = await api('/settings/analytics').catch(() => null);
const dock = new Dock(document.getElementById('dock'), {
  store,
  map: fleetMap,
  timezone: settings?.global?.timezone || 'Africa/Nairobi',
  onClose() {
    list.markSelected(null);
    fleetMap.resize();
  },
});

function select(id) {
  if (!store.vehicles.has(id)) return;
  list.markSelected(id);
  dock.open(id);
  fleetMap.resize();
  fleetMap.focus(id);
}

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && dock.vehicleId !== null) {
    const id = dock.vehicleId;
    dock.close();
    list.items.get(id)?.focus();
  }
});

/** Open alarms per vehicle, from the alarm list (all pages of the last 24 h). */
async function openAlarms() {
  const counts = new Map();
  const from = new Date(Date.now() - OPEN_ALARM_WINDOW_MS).toISOString();
  let after;
  for (let page = 0; page < 20; page += 1) {
    const res = await api(`/alarms${query({ acknowledged: false, from, limit: 1000, after })}`);
    for (const a of res.items) counts.set(a.device_id, (counts.get(a.device_id) || 0) + 1);
    if (!res.next_after) break;
    after = res.next_after;
  }
  return counts;
}

/** A vehicle unknown to the page reported (new, or reactivated): reload, at most this often. */
const UNKNOWN_RELOAD_MS = 30_000;
let lastUnknownReload = 0;
function unknownVehicle() {
  if (Date.now() - lastUnknownReload < UNKNOWN_RELOAD_MS) return;
  lastUnknownReload = Date.now();
  reload();
}

let loading = null;
/** (Re)loads the whole fleet: at start, after a reset event, when an unknown vehicle reports. */
function reload() {
  loading ??= api('/fleet/live')
    .then(async (live) => {
      // the features carry their open alarms; the alarm list is only needed when they do not
      const counted = live.features.length === 0 || live.features[0].properties.open_alarms !== undefined;
      store.load(live, counted ? new Map() : await openAlarms());
      flush();
    })
    .catch((e) => showError(`Could not load the fleet: ${e.message}`))
    .finally(() => {
      loading = null;
    });
  return loading;
}

/** Draws what changed since the last flush. */
function flush() {
  const changes = store.takeChanges();
  if (!changes.structure && changes.ids.size === 0) return;
  if (changes.structure) list.rebuild();
  list.update(changes.ids);
  fleetMap.sync(changes, visible);
  if (dock.vehicleId !== null && changes.ids.has(dock.vehicleId)) dock.refresh();
}

await reload();
fleetMap.fitAll();
list.tick();
openFromUrl();

/**
 * `?device=<id>&at=<time>` (the link of a notification): selects and centres the vehicle and,
 * when the moment is on another day, shows that day in the dock.
 */
function openFromUrl() {
  const q = new URLSearchParams(location.search);
  const id = Number(q.get('device'));
  if (!Number.isInteger(id) || !store.vehicles.has(id)) return;
  select(id);
  const at = q.get('at') ? new Date(q.get('at')) : null;
  if (!at || Number.isNaN(at.getTime())) return;
  const day = localDate(at, dock.timezone);
  if (day !== dock.today()) {
    const input = document.getElementById('dock-day');
    if (input) input.value = day;
    dock.loadDay(day);
  }
}

const streamState = document.querySelector('.stream-state');
openStream(
  {
    position: (e) => store.position(e) || unknownVehicle(),
    status: (e) => store.status(e) || unknownVehicle(),
    alarm: (e) => store.alarm(e),
    notification: (e) => headerBell()?.add(e),
    reset: () => {
      reload();
      headerBell()?.reload();
    },
  },
  (connected, retryInMs) => {
    if (connected) streamState.textContent = '';
    else if (retryInMs) streamState.textContent = `Live updates paused — trying again in ${Math.round(retryInMs / 1000)} s`;
    else streamState.textContent = 'Live updates interrupted — reconnecting…';
    streamState.hidden = connected;
  },
);

// one redraw a second however many events arrive; ages tick with it
setInterval(() => {
  flush();
  dock.tick();
}, 1000);
setInterval(() => list.tick(), 15_000);
// acknowledgements are not streamed: re-read the open alarms now and then
setInterval(() => {
  openAlarms()
    .then((counts) => store.setAlarms(counts))
    .catch(() => {}); // the next round tries again; the counts stay as they were
}, 60_000);

// a handle for checking what the map shows (marker count and positions) from outside
window.fleetNow = {
  store,
  markerCount: () => fleetMap.shown.size,
  markerIds: () => [...fleetMap.shown].sort((a, b) => a - b),
  clusterLayerCount: () => fleetMap.cluster.getLayers().length,
  markerLatLng: (id) => {
    const ll = fleetMap.markers.get(id)?.getLatLng();
    return ll ? [ll.lat, ll.lng] : null;
  },
  replayLatLng: () => {
    const ll = fleetMap.replayMarker?.getLatLng();
    return ll ? [ll.lat, ll.lng] : null;
  },
};
