// The live fleet as FleetNow holds it: one record per vehicle, kept up to date from the
// stream's events. Changes are only marked here (ids in `dirty`); the views redraw what changed
// on their own tick, so a burst of events costs one redraw instead of one per event.

export const STATES = ['moving', 'idling', 'parked', 'offline'];

/** A fix this recent counts as "reporting" on the freshness tile. */
export const RECENT_S = 600;

export class FleetStore {
  constructor() {
    /** device id → vehicle */
    this.vehicles = new Map();
    /** ids changed since the views last drew */
    this.dirty = new Set();
    /** the list of vehicles changed (added or removed): views rebuild, not patch */
    this.structureChanged = false;
    /** server clock minus browser clock, ms, so fix ages match the server's */
    this.skew = 0;
  }

  /** Server "now", ms. */
  now() {
    return Date.now() + this.skew;
  }

  /** Replaces everything with a `/fleet/live` answer; `openAlarms` maps device id → count. */
  load(live, openAlarms) {
    this.skew = Date.parse(live.generated_at) - Date.now();
    const seen = new Set();
    for (const f of live.features) {
      const p = f.properties;
      seen.add(f.id);
      const v = this.vehicles.get(f.id) || { id: f.id };
      const before = JSON.stringify(v);
      Object.assign(v, {
        imei: p.imei,
        name: p.name,
        plate: p.plate,
        driver: p.driver_name,
        costCentre: p.cost_centre,
        city: p.city,
        status: p.status,
        since: p.state_since,
        speed: p.speed_kmh,
        course: p.course_deg,
        ignition: p.ignition,
        gpsTime: Date.parse(p.gps_time),
        battery: p.battery_pct,
        voltage: p.external_v,
        lon: f.geometry.coordinates[0],
        lat: f.geometry.coordinates[1],
        // the API's count once it carries one; until then the alarm list's
        alarms: p.open_alarms ?? openAlarms.get(f.id) ?? 0,
      });
      v.search = [p.name, p.plate, (p.plate || '').replace(/\s+/g, ''), p.imei, p.driver_name]
        .filter(Boolean)
        .join('\n')
        .toLowerCase();
      if (!this.vehicles.has(f.id)) this.structureChanged = true;
      this.vehicles.set(f.id, v);
      // a reload of a large fleet changes few vehicles: redraw only those
      if (JSON.stringify(v) !== before) this.dirty.add(f.id);
    }
    for (const id of this.vehicles.keys()) {
      if (!seen.has(id)) {
        this.vehicles.delete(id);
        this.structureChanged = true;
      }
    }
  }

  /** A `position` event; false when the vehicle is unknown (the caller reloads). */
  position(e) {
    const v = this.vehicles.get(e.device_id);
    if (!v) return false;
    const t = Date.parse(e.gps_time);
    if (t < v.gpsTime) return true; // a late fix never replaces a newer one
    Object.assign(v, {
      lat: e.lat,
      lon: e.lon,
      speed: e.speed_kmh,
      course: e.course_deg,
      ignition: e.ignition,
      gpsTime: t,
    });
    if (e.status !== v.status) {
      v.status = e.status;
      v.since = e.gps_time;
    }
    this.dirty.add(v.id);
    return true;
  }

  /** A `status` event. */
  status(e) {
    const v = this.vehicles.get(e.device_id);
    if (!v) return false;
    v.status = e.status;
    v.since = e.since;
    this.dirty.add(v.id);
    return true;
  }

  /** An `alarm` event: one more open alarm. */
  alarm(e) {
    const v = this.vehicles.get(e.device_id);
    if (!v) return false;
    v.alarms += 1;
    this.dirty.add(v.id);
    return true;
  }

  /** Replaces the open-alarm counts (device id → count), e.g. after alarms were acknowledged. */
  setAlarms(openAlarms) {
    for (const v of this.vehicles.values()) {
      const n = openAlarms.get(v.id) ?? 0;
      if (v.alarms !== n) {
        v.alarms = n;
        this.dirty.add(v.id);
      }
    }
  }

  /** Sorted distinct values of a field ('' for vehicles without one). */
  values(field) {
    const set = new Set();
    for (const v of this.vehicles.values()) set.add(v[field] || '');
    return [...set].sort((a, b) => (a === '' ? 1 : b === '' ? -1 : a.localeCompare(b)));
  }

  /** Takes the dirty ids (and whether the vehicle set changed) for one redraw. */
  takeChanges() {
    const ids = this.dirty;
    const structure = this.structureChanged;
    this.dirty = new Set();
    this.structureChanged = false;
    return { ids, structure };
  }
}

/** Seconds since the vehicle's newest fix. */
export function fixAge(store, v) {
  return (store.now() - v.gpsTime) / 1000;
}
