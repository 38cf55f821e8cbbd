// The side panel: count tiles that double as state filters, the freshness tile, search,
// cost-centre and city filters whose swatches are the map's legend, and the vehicle list. Items
// are built once and patched in place; filtering only hides and shows them.
import { ago, colourFor, esc, num, statusColours } from '../common/format.js';
import { fixAge, RECENT_S, STATES } from './store.js';

const stateLabels = { moving: 'Moving', idling: 'Idling', parked: 'Parked', offline: 'Offline', alarm: 'In alarm' };

export class VehicleList {
  /**
   * @param {HTMLElement} el the panel
   * @param {import('./store.js').FleetStore} store
   * @param {import('./filters.js').Filters} filters
   * @param {{select: (id:number)=>void, filtersChanged: ()=>void, colourModeChanged: (mode:string)=>void}} on
   */
  constructor(el, store, filters, on) {
    this.el = el;
    this.store = store;
    this.filters = filters;
    this.on = on;
    this.colourMode = 'status';
    this.selected = null;
    /** device id → list item button */
    this.items = new Map();
    /** every vehicle's id in list order, and the ids listed now (comma-joined) */
    this.order = [];
    this.listed = null;
    el.innerHTML = `
      <div class="tiles" role="group" aria-label="Vehicles by state (press to filter)">
        ${[...STATES, 'alarm']
          .map(
            (s) => `<button type="button" class="tile state-tile" data-state="${s}" aria-pressed="false" data-testid="tile-${s}">
              <span class="swatch" style="background:${statusColours[s]}"></span>
              <span class="label">${stateLabels[s]}</span>
              <span class="value" data-count="${s}">0</span></button>`,
          )
          .join('')}
        <div class="tile total-tile"><span class="label">Vehicles</span><span class="value" data-count="total" data-testid="tile-total">0</span></div>
        <div class="tile fresh-tile" data-testid="tile-freshness"><span class="label">Newest fix</span>
          <span class="value" data-fresh="newest">—</span>
          <span class="sub" data-fresh="share"></span></div>
      </div>
      <div class="search">
        <label for="vehicle-search">Search</label>
        <input id="vehicle-search" type="search" placeholder="Name, plate, IMEI or driver" autocomplete="off">
      </div>
      <div class="colour-mode" role="group" aria-label="Marker colour">
        <span class="group-label">Colour by</span>
        <button type="button" data-mode="status" aria-pressed="true">Status</button>
        <button type="button" data-mode="costCentre" aria-pressed="false">Cost centre</button>
      </div>
      <div class="facet" role="group" aria-label="Cost centres (press to filter)" data-facet="costCentre"></div>
      <div class="facet" role="group" aria-label="Cities (press to filter)" data-facet="city"></div>
      <p class="list-count" aria-live="polite" data-testid="list-count"></p>
      <ul class="vehicle-list" aria-label="Vehicles"></ul>`;
    this.listEl = el.querySelector('.vehicle-list');
    this.countEl = el.querySelector('.list-count');
    this.bind();
  }

  bind() {
    const el = this.el;
    el.querySelectorAll('.state-tile').forEach((b) =>
      b.addEventListener('click', () => {
        this.filters.toggle(this.filters.states, b.dataset.state);
        b.setAttribute('aria-pressed', String(this.filters.states.has(b.dataset.state)));
        this.on.filtersChanged();
      }),
    );
    let searchTimer;
    el.querySelector('#vehicle-search').addEventListener('input', (e) => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        this.filters.search = e.target.value.trim();
        this.on.filtersChanged();
      }, 150);
    });
    el.querySelectorAll('.colour-mode button').forEach((b) =>
      b.addEventListener('click', () => {
        this.colourMode = b.dataset.mode;
        el.querySelectorAll('.colour-mode button').forEach((x) => x.setAttribute('aria-pressed', String(x === b)));
        this.renderFacets();
        this.on.colourModeChanged(this.colourMode);
      }),
    );
    el.querySelectorAll('.facet').forEach((f) =>
      f.addEventListener('click', (e) => {
        const b = e.target.closest('button[data-value]');
        if (!b) return;
        const set = f.dataset.facet === 'city' ? this.filters.cities : this.filters.costCentres;
        this.filters.toggle(set, b.dataset.value);
        b.setAttribute('aria-pressed', String(set.has(b.dataset.value)));
        this.on.filtersChanged();
      }),
    );
    this.listEl.addEventListener('click', (e) => {
      const b = e.target.closest('button[data-id]');
      if (b) this.on.select(Number(b.dataset.id));
    });
    // arrow keys walk the list; Tab leaves it
    this.listEl.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
      const buttons = [...this.listEl.querySelectorAll('button')];
      const i = buttons.indexOf(document.activeElement);
      const next = buttons[i + (e.key === 'ArrowDown' ? 1 : -1)];
      if (next) {
        e.preventDefault();
        next.focus();
      }
    });
  }

  /** Cost-centre and city buttons; their swatches are the legend of the cost-centre colours. */
  renderFacets() {
    const costCentres = this.store.values('costCentre');
    for (const [facet, values, set, noneLabel] of [
      ['costCentre', costCentres, this.filters.costCentres, 'No cost centre'],
      ['city', this.store.values('city'), this.filters.cities, 'No city'],
    ]) {
      const box = this.el.querySelector(`.facet[data-facet="${facet}"]`);
      const showColour = facet === 'costCentre' && this.colourMode === 'costCentre';
      box.innerHTML =
        `<span class="group-label">${facet === 'city' ? 'City' : 'Cost centre'}</span>` +
        values
          .map(
            (val) => `<button type="button" class="facet-value" data-value="${esc(val)}" aria-pressed="${set.has(val)}">
              ${showColour ? `<span class="swatch" style="background:${colourFor(val || null, costCentres.filter(Boolean))}"></span>` : ''}
              <span class="name">${esc(val || noneLabel)}</span>
              <span class="n" data-facet-count></span></button>`,
          )
          .join('');
    }
  }

  /** Builds the items in name order (when the set of vehicles changed). */
  rebuild() {
    const vehicles = [...this.store.vehicles.values()].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
    this.items.clear();
    const frag = document.createDocumentFragment();
    for (const v of vehicles) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'vehicle';
      b.dataset.id = String(v.id);
      li.append(b);
      frag.append(li);
      this.items.set(v.id, b);
      this.patch(v);
    }
    this.order = vehicles.map((v) => v.id);
    this.listed = null;
    this.listEl.replaceChildren(frag);
    this.renderFacets();
    this.markSelected(this.selected);
  }

  /** Redraws one item. */
  patch(v) {
    const b = this.items.get(v.id);
    if (!b) return;
    b.innerHTML = `
      <span class="row1"><span class="name">${esc(v.name)}</span>
        <span class="pill st-${v.status}">${stateLabels[v.status] || esc(v.status)}</span>
        ${v.alarms > 0 ? `<span class="pill alarm" title="Open alarms">${v.alarms} alarm${v.alarms > 1 ? 's' : ''}</span>` : ''}</span>
      <span class="row2"><span>${esc(v.plate || '—')}</span><span>${esc(v.driver || 'No driver')}</span>
        <span>${num(v.speed ?? 0)} km/h</span><span class="age" data-age>${esc(ago(fixAge(this.store, v)))}</span></span>`;
  }

  /** Patches the changed items, then re-applies the filters and counts. */
  update(ids) {
    for (const id of ids) {
      const v = this.store.vehicles.get(id);
      if (v) this.patch(v);
    }
    this.applyFilters();
  }

  /** Shows the items the filters let through; updates every count. */
  applyFilters() {
    const counts = { moving: 0, idling: 0, parked: 0, offline: 0, alarm: 0, total: 0 };
    const facetCounts = { costCentre: new Map(), city: new Map() };
    const listed = [];
    for (const id of this.order) {
      const v = this.store.vehicles.get(id);
      if (v && this.filters.matches(v)) listed.push(id);
    }
    // the list holds only the matching items: hiding thousands of items in place makes the
    // browser's layout crawl, while taking them out and putting them back is quick
    const key = listed.join(',');
    if (key !== this.listed) {
      this.listed = key;
      this.listEl.replaceChildren(...listed.map((id) => this.items.get(id).parentElement));
    }
    const shown = listed.length;
    for (const v of this.store.vehicles.values()) {
      for (const f of ['costCentre', 'city']) {
        const k = v[f] || '';
        facetCounts[f].set(k, (facetCounts[f].get(k) || 0) + 1);
      }
      if (!this.filters.inScope(v)) continue;
      counts.total += 1;
      counts[v.status] += 1;
      if (v.alarms > 0) counts.alarm += 1;
    }
    for (const [k, n] of Object.entries(counts)) {
      const el = this.el.querySelector(`[data-count="${k}"]`);
      if (el.textContent !== String(n)) el.textContent = String(n);
    }
    for (const f of ['costCentre', 'city']) {
      this.el.querySelectorAll(`.facet[data-facet="${f}"] button`).forEach((b) => {
        b.querySelector('[data-facet-count]').textContent = String(facetCounts[f].get(b.dataset.value) || 0);
      });
    }
    const text = `${shown} of ${this.store.vehicles.size} vehicles shown`;
    if (this.countEl.textContent !== text) this.countEl.textContent = text;
    this.countEl.dataset.shown = String(shown);
  }

  /** The freshness tile and the items' fix ages (called on a slow tick). */
  tick() {
    let newest = 0;
    let recent = 0;
    for (const v of this.store.vehicles.values()) {
      newest = Math.max(newest, v.gpsTime);
      if (fixAge(this.store, v) <= RECENT_S) recent += 1;
    }
    const n = this.store.vehicles.size;
    this.el.querySelector('[data-fresh="newest"]').textContent = n ? ago((this.store.now() - newest) / 1000) : '—';
    this.el.querySelector('[data-fresh="share"]').textContent = n
      ? `${recent} of ${n} (${Math.round((100 * recent) / n)} %) reported in the last ${RECENT_S / 60} min`
      : '';
    for (const [id, b] of this.items) {
      const v = this.store.vehicles.get(id);
      const age = b.querySelector('[data-age]');
      if (v && age) age.textContent = ago(fixAge(this.store, v));
    }
  }

  markSelected(id) {
    this.items.get(this.selected)?.removeAttribute('aria-current');
    this.selected = id;
    this.items.get(id)?.setAttribute('aria-current', 'true');
  }
}
