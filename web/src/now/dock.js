// The selected vehicle's dock: its live facts (kept current by the stream), its open alarms,
// and its day — reporting time, totals, one card per trip, the day's track on the map, a trip
// replay and the day's trips as CSV.
import { api, query } from '../common/api.js';
import { addDays, ago, esc, km, localDate, localTime, minutes, num, pct } from '../common/format.js';
import { Replay, SPEEDS } from './replay.js';
import { fixAge } from './store.js';

const endReasons = {
  work_stop: 'Work stop',
  long_gap: 'Long gap (no reports)',
  day_end: 'Day end',
  open: 'Still going',
};
const stateLabels = { moving: 'Moving', idling: 'Idling', parked: 'Parked', offline: 'Offline' };

function yesNo(value) {
  return value === null || value === undefined ? '—' : value ? 'On' : 'Off';
}

export class Dock {
  /**
   * @param {HTMLElement} el
   * @param {{store: import('./store.js').FleetStore, map: import('./map.js').FleetMap, timezone: string, onClose: () => void}} opts
   */
  constructor(el, { store, map, timezone, onClose }) {
    this.el = el;
    this.store = store;
    this.map = map;
    this.timezone = timezone;
    this.onClose = onClose;
    this.vehicleId = null;
    this.date = null;
    this.day = null;
    this.replay = null;
    /** bumped per request, so a slow answer for a previous vehicle or day is dropped */
    this.generation = 0;
    el.addEventListener('click', (e) => this.clicked(e));
    el.addEventListener('change', (e) => {
      if (e.target.matches('input[name="day"]') && e.target.value) this.loadDay(e.target.value);
      if (e.target.matches('input[name="replay-position"]')) this.replay?.seek(Number(e.target.value) / 1000);
    });
    el.addEventListener('input', (e) => {
      if (e.target.matches('input[name="replay-position"]')) this.replay?.seek(Number(e.target.value) / 1000);
    });
  }

  today() {
    return localDate(new Date(this.store.now()), this.timezone);
  }

  open(id) {
    const v = this.store.vehicles.get(id);
    if (!v) return;
    this.stopReplay();
    this.vehicleId = id;
    this.generation += 1;
    this.el.hidden = false;
    this.el.innerHTML = `
      <div class="dock-head">
        <h2 id="dock-title" tabindex="-1">${esc(v.name)}</h2>
        <button type="button" class="close" data-action="close" aria-label="Close details (Escape)">✕</button>
      </div>
      <dl class="facts" data-facts></dl>
      <section aria-labelledby="dock-alarms-h"><h3 id="dock-alarms-h">Open alarms</h3>
        <div data-alarms><p class="muted">Loading…</p></div></section>
      <section aria-labelledby="dock-day-h" class="day">
        <h3 id="dock-day-h">Day</h3>
        <div class="day-pick">
          <button type="button" data-action="prev-day" aria-label="Previous day">‹</button>
          <label class="visually-hidden" for="dock-day">Day</label>
          <input id="dock-day" name="day" type="date" max="${this.today()}" value="${this.today()}">
          <button type="button" data-action="next-day" aria-label="Next day">›</button>
        </div>
        <div data-day aria-live="polite"><p class="muted">Loading…</p></div>
      </section>`;
    this.el.setAttribute('aria-labelledby', 'dock-title');
    // keyboard and screen-reader users land on what they opened; on a phone it scrolls into view
    this.el.querySelector('#dock-title').focus({ preventScroll: true });
    this.el.scrollIntoView({ block: 'nearest' });
    this.refresh();
    this.loadAlarms(id);
    this.loadDay(this.today());
  }

  close() {
    if (this.vehicleId === null) return;
    this.stopReplay();
    this.map.clearDay();
    this.vehicleId = null;
    this.generation += 1;
    this.el.hidden = true;
    this.el.innerHTML = '';
    this.onClose();
  }

  /** The live facts, from the store. */
  refresh() {
    const v = this.store.vehicles.get(this.vehicleId);
    const box = this.el.querySelector('[data-facts]');
    if (!v || !box) return;
    const facts = [
      ['Status', `${stateLabels[v.status] || esc(v.status)}${v.alarms > 0 ? ` · <span class="alarm-text">${v.alarms} open alarm${v.alarms > 1 ? 's' : ''}</span>` : ''}`],
      ['Plate', esc(v.plate || '—')],
      ['Driver', esc(v.driver || '—')],
      ['Speed', `${num(v.speed ?? 0)} km/h`],
      ['Ignition', yesNo(v.ignition)],
      ['Last update', `<span data-last-update>${esc(ago(fixAge(this.store, v)))}</span>`],
      ['Battery', v.battery === null || v.battery === undefined ? '—' : pct(v.battery)],
      ['Voltage', v.voltage === null || v.voltage === undefined ? '—' : `${num(v.voltage, 1)} V`],
      ['Cost centre', esc(v.costCentre || '—')],
      ['City', esc(v.city || '—')],
      ['IMEI', esc(v.imei)],
    ];
    box.innerHTML = facts.map(([k, val]) => `<div><dt>${k}</dt><dd>${val}</dd></div>`).join('');
  }

  /** Keeps "last update" ticking between fixes. */
  tick() {
    const v = this.store.vehicles.get(this.vehicleId);
    const el = this.el.querySelector('[data-last-update]');
    if (v && el) el.textContent = ago(fixAge(this.store, v));
  }

  /** "14:05" today, "2026-11-20 14:05" on another day (fleet time). */
  when(iso) {
    const d = new Date(iso);
    const date = localDate(d, this.timezone);
    return `${date === this.today() ? '' : `${date} `}${localTime(d, this.timezone)}`;
  }

  async loadAlarms(id) {
    const box = this.el.querySelector('[data-alarms]');
    try {
      const from = new Date(this.store.now() - 24 * 3600 * 1000).toISOString();
      const res = await api(`/alarms${query({ device_id: id, acknowledged: false, from, limit: 50 })}`);
      if (id !== this.vehicleId) return;
      box.innerHTML = res.items.length
        ? `<ul class="alarm-list">${res.items
            .map(
              (a) => `<li><span class="alarm-name">${esc(a.alarm_name)}</span>
                <span class="muted">${esc(a.alarm_class)} · ${esc(this.when(a.alarm_time))}</span></li>`,
            )
            .join('')}</ul>`
        : '<p class="muted">None in the last 24 h.</p>';
    } catch (e) {
      if (id === this.vehicleId) box.innerHTML = `<p class="error">Could not load alarms: ${esc(e.message)}</p>`;
    }
  }

  async loadDay(date) {
    const id = this.vehicleId;
    this.stopReplay();
    this.map.clearDay();
    this.date = date;
    const gen = ++this.generation;
    const box = this.el.querySelector('[data-day]');
    const input = this.el.querySelector('input[name="day"]');
    input.value = date;
    this.el.querySelector('[data-action="next-day"]').disabled = date >= this.today();
    box.innerHTML = '<p class="muted">Loading…</p>';
    try {
      const day = await api(`/devices/${id}/day${query({ date })}`);
      if (gen !== this.generation) return;
      this.day = day;
      this.renderDay(day);
      const track = await api(`/devices/${id}/track${query({ from: day.from, to: day.to, format: 'geojson' })}`);
      if (gen !== this.generation) return;
      this.map.showTrack(track.features?.[0]?.geometry?.coordinates);
    } catch (e) {
      if (gen === this.generation) box.innerHTML = `<p class="error">Could not load the day: ${esc(e.message)}</p>`;
    }
  }

  renderDay(day) {
    const tz = this.timezone;
    const t = day.totals;
    const csv = `/api/v1/trips${query({ device_id: day.device_id, from: day.from, to: day.to, format: 'csv' })}`;
    const name = `trips-${(day.plate || day.name).replace(/[^\w-]+/g, '_')}-${day.date}.csv`;
    this.el.querySelector('[data-day]').innerHTML = `
      <p class="reporting">Reporting time: <strong>${day.reporting_time ? esc(localTime(new Date(day.reporting_time), tz)) : '—'}</strong></p>
      <div class="totals">
        <div class="tile"><span class="label">Trips</span><span class="value" data-testid="day-trips">${t.trips}</span></div>
        <div class="tile"><span class="label">Distance</span><span class="value">${km(t.distance_km)}</span></div>
        <div class="tile"><span class="label">Driving</span><span class="value">${minutes(t.driving_min)}</span></div>
        <div class="tile"><span class="label">Idle</span><span class="value">${minutes(t.idle_min)}</span></div>
        <div class="tile"><span class="label">Stopped</span><span class="value">${minutes(t.stopped_min)}</span></div>
      </div>
      <a class="csv" href="${esc(csv)}" download="${esc(name)}">Download the day's trips (CSV)</a>
      <div class="replay" data-replay hidden></div>
      ${
        day.trips.length
          ? `<ol class="trips">${day.trips
              .map(
                (trip, i) => `<li class="trip-card">
                  <div class="trip-time">${esc(localTime(new Date(trip.start_time), tz))}–${esc(localTime(new Date(trip.end_time), tz))}
                    <span class="reason reason-${esc(trip.end_reason)}">${esc(endReasons[trip.end_reason] || trip.end_reason)}</span></div>
                  <div class="muted">${km(trip.distance_m / 1000)} · ${minutes(trip.duration_s / 60)} · max ${num(trip.max_speed_kmh ?? 0)} km/h${
                    trip.idle_s ? ` · idle ${minutes(trip.idle_s / 60)}` : ''
                  }</div>
                  <button type="button" data-action="replay" data-trip="${i}">Replay trip ${i + 1}</button>
                </li>`,
              )
              .join('')}</ol>`
          : '<p class="muted">No trips this day.</p>'
      }`;
  }

  clicked(e) {
    const b = e.target.closest('[data-action]');
    if (!b) return;
    const action = b.dataset.action;
    if (action === 'close') this.close();
    else if (action === 'prev-day') this.loadDay(addDays(this.date, -1));
    else if (action === 'next-day') this.loadDay(addDays(this.date, 1));
    else if (action === 'replay') this.startReplay(this.day.trips[Number(b.dataset.trip)]);
    else if (action === 'play') this.replay?.[this.replay.playing ? 'pause' : 'play']();
    else if (action === 'speed') {
      if (this.replay) this.replay.speed = Number(b.dataset.speed);
      this.el.querySelectorAll('[data-action="speed"]').forEach((x) => x.setAttribute('aria-pressed', String(x === b)));
    } else if (action === 'stop-replay') this.stopReplay();
  }

  async startReplay(trip) {
    this.stopReplay();
    const gen = this.generation;
    const box = this.el.querySelector('[data-replay]');
    box.hidden = false;
    box.innerHTML = '<p class="muted">Loading the trip…</p>';
    try {
      const track = await api(`/trips/${trip.device_id}/${encodeURIComponent(trip.start_time)}/track`);
      if (gen !== this.generation) return;
      if (!track.geometry) {
        box.innerHTML = '<p class="muted">This trip has too few fixes to replay.</p>';
        return;
      }
      this.map.showTrip(track.geometry.coordinates);
      box.innerHTML = `
        <h4>Replay ${esc(localTime(new Date(trip.start_time), this.timezone))}–${esc(localTime(new Date(trip.end_time), this.timezone))}</h4>
        <div class="replay-controls">
          <button type="button" class="primary" data-action="play" data-testid="replay-play">Play</button>
          <div role="group" aria-label="Replay speed" class="speeds">
            ${SPEEDS.map((s) => `<button type="button" data-action="speed" data-speed="${s}" aria-pressed="${s === 16}">${s}×</button>`).join('')}
          </div>
          <button type="button" data-action="stop-replay">Close replay</button>
        </div>
        <label class="replay-progress">Position <span data-replay-time></span>
          <input name="replay-position" type="range" min="0" max="1000" step="1" value="0">
        </label>`;
      const range = box.querySelector('input[name="replay-position"]');
      const timeEl = box.querySelector('[data-replay-time]');
      const playButton = box.querySelector('[data-action="play"]');
      this.replay = new Replay(
        track.geometry.coordinates,
        track.properties.times,
        (lat, lon, progress, t) => {
          this.map.moveReplay(lat, lon);
          range.value = String(Math.round(progress * 1000));
          const label = `${localTime(new Date(t), this.timezone)} (${Math.round(progress * 100)} %)`;
          range.setAttribute('aria-valuetext', label);
          timeEl.textContent = label;
        },
        (playing) => {
          playButton.textContent = playing ? 'Pause' : 'Play';
        },
      );
      playButton.focus();
    } catch (e) {
      if (gen === this.generation) box.innerHTML = `<p class="error">Could not load the trip: ${esc(e.message)}</p>`;
    }
  }

  stopReplay() {
    this.replay?.destroy();
    this.replay = null;
    this.map.clearReplay();
    const box = this.el.querySelector('[data-replay]');
    if (box) {
      box.hidden = true;
      box.innerHTML = '';
    }
  }
}
