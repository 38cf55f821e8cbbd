// What the user narrowed the fleet to: a search text, states, cost centres and cities. An
// empty set means "all". Counts follow the API's summary: they apply the cost-centre and city
// filters but neither the search nor the states (so a state's count shows what pressing it
// would give).

export class Filters {
  constructor() {
    this.search = '';
    /** moving, idling, parked, offline and/or alarm (open alarms) */
    this.states = new Set();
    /** cost centres ('' = none) */
    this.costCentres = new Set();
    /** cities ('' = none) */
    this.cities = new Set();
  }

  /** Within the chosen cost centres and cities. */
  inScope(v) {
    return (
      (this.costCentres.size === 0 || this.costCentres.has(v.costCentre || '')) &&
      (this.cities.size === 0 || this.cities.has(v.city || ''))
    );
  }

  /** Shown in the list and on the map. */
  matches(v) {
    if (!this.inScope(v)) return false;
    if (this.states.size && !this.states.has(v.status) && !(this.states.has('alarm') && v.alarms > 0)) return false;
    if (this.search) {
      const words = this.search.toLowerCase().split(/\s+/).filter(Boolean);
      const compact = this.search.toLowerCase().replace(/\s+/g, '');
      if (!v.search.includes(compact) && !words.every((w) => v.search.includes(w))) return false;
    }
    return true;
  }

  /** Flips a value in one of the sets. */
  toggle(set, value) {
    if (set.has(value)) set.delete(value);
    else set.add(value);
  }
}
