// The live map: one Leaflet marker per vehicle, built once and then moved and restyled in place
// (a 10,000-vehicle fleet cannot be redrawn per event), clustered when zoomed out, plus the
// selected vehicle's day track and the trip replay marker.
import L from 'leaflet';
import 'leaflet.markercluster';
import 'leaflet/dist/leaflet.css';
import 'leaflet.markercluster/dist/MarkerCluster.css';
import 'leaflet.markercluster/dist/MarkerCluster.Default.css';
import { colourFor, esc, statusColours, ago, num } from '../common/format.js';
import { fixAge } from './store.js';

/** From this zoom on, markers carry their plate. */
const LABEL_ZOOM = 14;
/** More tile errors than this within TILE_ERROR_WINDOW_MS and the tiles are given up. */
const TILE_ERROR_LIMIT = 8;
const TILE_ERROR_WINDOW_MS = 10_000;

const badges = { moving: 'M', idling: 'I', parked: 'P', offline: 'O' };

/** Compass point of a heading. */
function compass(deg) {
  if (deg === null || deg === undefined) return '—';
  return ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'][Math.round(deg / 45) % 8];
}

export class FleetMap {
  /**
   * @param {HTMLElement} el the map's container
   * @param {{tile_url?: string, tile_attribution?: string}} config
   * @param {import('./store.js').FleetStore} store
   * @param {(id: number) => void} onSelect a marker was clicked (or activated by keyboard)
   */
  constructor(el, config, store, onSelect) {
    this.el = el;
    this.store = store;
    this.colourMode = 'status';
    this.costCentres = [];
    /** device id → marker */
    this.markers = new Map();
    /** ids of the markers in the cluster group (those the filters let through) */
    this.shown = new Set();
    // markercluster needs the zoom range even when there is no tile layer to give it
    this.map = L.map(el, { minZoom: 2, maxZoom: 19, worldCopyJump: true }).setView([-1.29, 36.82], 7);
    this.addTiles(config);
    this.cluster = L.markerClusterGroup({
      chunkedLoading: true,
      showCoverageOnHover: false,
      maxClusterRadius: 50,
      spiderfyOnMaxZoom: true,
    });
    this.cluster.on('click', (e) => onSelect(e.layer.vehicleId));
    this.cluster.on('keypress', (e) => {
      if (e.originalEvent?.key === 'Enter' || e.originalEvent?.key === ' ') onSelect(e.layer.vehicleId);
    });
    this.map.addLayer(this.cluster);
    this.map.on('zoomend', () => this.el.classList.toggle('show-labels', this.map.getZoom() >= LABEL_ZOOM));
    this.trackLayer = L.layerGroup().addTo(this.map);
    this.replayMarker = null;
  }

  /** The tile layer, given up (for a plain background) when its tiles keep failing. */
  addTiles(config) {
    const url = (config.tile_url || '').trim();
    if (!url || url === 'none') {
      this.el.classList.add('no-tiles');
      return;
    }
    const errors = [];
    const tiles = L.tileLayer(url, { attribution: config.tile_attribution || '', maxZoom: 19 });
    tiles.on('tileerror', () => {
      const now = Date.now();
      errors.push(now);
      while (errors.length && errors[0] < now - TILE_ERROR_WINDOW_MS) errors.shift();
      if (errors.length > TILE_ERROR_LIMIT && this.map.hasLayer(tiles)) {
        this.map.removeLayer(tiles);
        this.el.classList.add('no-tiles');
        const notice = document.createElement('div');
        notice.className = 'map-notice';
        notice.setAttribute('role', 'status');
        notice.textContent = 'Map tiles unavailable — plain background';
        this.el.append(notice);
      }
    });
    tiles.addTo(this.map);
  }

  /** Colour markers by 'status' or by 'costCentre'. */
  setColourMode(mode, costCentres) {
    this.colourMode = mode;
    this.costCentres = costCentres;
    for (const [id, m] of this.markers) this.restyle(m, this.store.vehicles.get(id), true);
  }

  colourOf(v) {
    return this.colourMode === 'status' ? statusColours[v.status] : colourFor(v.costCentre, this.costCentres);
  }

  /** Redraws the vehicles that changed; `visible(v)` says which the filters let through. */
  sync({ ids, structure }, visible) {
    const add = [];
    const remove = [];
    // markers moved inside the cluster group are taken out and put back in one batch each,
    // much cheaper than the group re-clustering every moved marker on its own
    const moved = [];
    if (structure) {
      for (const [id, m] of this.markers) {
        if (!this.store.vehicles.has(id)) {
          remove.push(m);
          this.markers.delete(id);
          this.shown.delete(id);
        }
      }
    }
    for (const id of ids) {
      const v = this.store.vehicles.get(id);
      if (!v) continue;
      let m = this.markers.get(id);
      if (!m) {
        m = L.marker([v.lat, v.lon], { title: `${v.plate || v.name}`, alt: v.plate || v.name, riseOnHover: true });
        m.vehicleId = id;
        m.bindTooltip(() => this.tooltip(this.store.vehicles.get(id)), { direction: 'top', offset: [0, -12] });
        this.markers.set(id, m);
      } else {
        const ll = m.getLatLng();
        if (ll.lat !== v.lat || ll.lng !== v.lon) moved.push([m, v]);
      }
      this.restyle(m, v, false);
      const want = visible(v);
      if (want && !this.shown.has(id)) {
        add.push(m);
        this.shown.add(id);
      } else if (!want && this.shown.has(id)) {
        remove.push(m);
        this.shown.delete(id);
      }
    }
    const adding = new Set(add);
    const movedShown = moved.filter(([m]) => this.shown.has(m.vehicleId) && !adding.has(m)).map(([m]) => m);
    // a big change (a filter hiding most of the fleet): rebuilding the clusters from the markers
    // left is far cheaper than taking thousands out one by one
    const rebuild = remove.length + movedShown.length > this.shown.size / 4;
    if (rebuild) this.cluster.clearLayers();
    else if (remove.length || movedShown.length) this.cluster.removeLayers([...remove, ...movedShown]);
    // no moved marker is in the group now, so moving it triggers no re-clustering of its own
    for (const [m, v] of moved) m.setLatLng([v.lat, v.lon]);
    if (rebuild) this.cluster.addLayers([...this.shown].map((id) => this.markers.get(id)));
    else if (add.length || movedShown.length) this.cluster.addLayers([...add, ...movedShown]);
    this.el.dataset.markers = String(this.shown.size);
  }

  /** Shows exactly the vehicles `visible(v)` accepts (after a filter change). */
  refilter(visible) {
    this.sync({ ids: new Set(this.store.vehicles.keys()), structure: false }, visible);
  }

  /** Sets the marker's icon when its look changed (an icon swap rebuilds its element). */
  restyle(m, v, force) {
    const moving = v.status === 'moving' && v.course !== null && v.course !== undefined;
    const heading = moving ? Math.round(v.course / 10) * 10 : null;
    const colour = this.colourOf(v);
    const key = `${v.status}|${colour}|${heading}|${v.alarms > 0}`;
    if (!force && m.styleKey === key) return;
    m.styleKey = key;
    const label = esc(v.plate || v.name);
    m.setIcon(
      L.divIcon({
        className: `vehicle-marker st-${v.status}${v.alarms > 0 ? ' in-alarm' : ''}`,
        iconSize: [22, 22],
        iconAnchor: [11, 11],
        html:
          `<span class="dot" style="background:${colour}">${badges[v.status] || ''}</span>` +
          (heading !== null ? `<span class="arrow" style="transform:rotate(${heading}deg)"></span>` : '') +
          (v.alarms > 0 ? '<span class="alarm-badge" aria-hidden="true">!</span>' : '') +
          `<span class="plate">${label}</span>`,
      }),
    );
  }

  tooltip(v) {
    if (!v) return '';
    return `<strong>${esc(v.plate || v.name)}</strong><br>
      ${esc(v.driver || 'No driver')}<br>
      ${num(v.speed ?? 0)} km/h · ${compass(v.course)}${v.course !== null && v.course !== undefined ? ` (${num(v.course)}°)` : ''}<br>
      Fix ${esc(ago(fixAge(this.store, v)))}${v.alarms > 0 ? `<br><span class="tt-alarm">${v.alarms} open alarm${v.alarms > 1 ? 's' : ''}</span>` : ''}`;
  }

  /** Centres the vehicle, zooming in far enough to take it out of its cluster. */
  focus(id) {
    const m = this.markers.get(id);
    if (!m) return;
    if (this.shown.has(id)) {
      this.cluster.zoomToShowLayer(m, () => this.map.panTo(m.getLatLng()));
    } else {
      this.map.setView(m.getLatLng(), Math.max(this.map.getZoom(), LABEL_ZOOM));
    }
  }

  /** Fits every shown vehicle into view. */
  fitAll() {
    const b = this.cluster.getBounds();
    if (b.isValid()) this.map.fitBounds(b, { padding: [30, 30], maxZoom: 13 });
  }

  /** Draws a day's track (a GeoJSON LineString's coordinates) beneath the markers. */
  showTrack(coordinates) {
    this.trackLayer.clearLayers();
    if (!coordinates || coordinates.length < 2) return;
    L.polyline(
      coordinates.map(([lon, lat]) => [lat, lon]),
      { color: '#1d4ed8', weight: 3, opacity: 0.7, interactive: false },
    ).addTo(this.trackLayer);
  }

  /** Highlights a trip's line over the day's track. */
  showTrip(coordinates) {
    this.tripLine?.remove();
    this.tripLine = null;
    if (!coordinates || coordinates.length < 2) return;
    this.tripLine = L.polyline(
      coordinates.map(([lon, lat]) => [lat, lon]),
      { color: '#b45309', weight: 5, opacity: 0.9, interactive: false },
    ).addTo(this.map);
    this.map.fitBounds(this.tripLine.getBounds(), { padding: [30, 30] });
  }

  /** Puts the replay marker at [lat, lon]. */
  moveReplay(lat, lon) {
    if (!this.replayMarker) {
      this.replayMarker = L.marker([lat, lon], {
        icon: L.divIcon({ className: 'replay-marker', iconSize: [18, 18], iconAnchor: [9, 9] }),
        title: 'Replay position',
        keyboard: false,
        zIndexOffset: 1000,
      }).addTo(this.map);
    } else {
      this.replayMarker.setLatLng([lat, lon]);
    }
  }

  /** Removes the day track, the trip line and the replay marker. */
  clearDay() {
    this.trackLayer.clearLayers();
    this.clearReplay();
  }

  clearReplay() {
    this.tripLine?.remove();
    this.tripLine = null;
    this.replayMarker?.remove();
    this.replayMarker = null;
  }

  /** Leaflet measures its container; call after the layout changed. */
  resize() {
    this.map.invalidateSize();
  }
}
