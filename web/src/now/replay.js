// Replays a trip: a marker runs along the trip's fixes in (sped-up) trip time, interpolating
// between fixes so it glides rather than jumps.

export const SPEEDS = [1, 4, 16, 64, 256];

export class Replay {
  /**
   * @param {[number, number][]} coordinates [lon, lat] per fix
   * @param {string[]} times RFC 3339 per fix
   * @param {(lat:number, lon:number, progress:number, t:number) => void} draw
   * @param {(playing:boolean) => void} onState
   */
  constructor(coordinates, times, draw, onState) {
    this.points = coordinates.map(([lon, lat], i) => ({ lat, lon, t: Date.parse(times[i]) }));
    this.start = this.points[0].t;
    this.end = this.points[this.points.length - 1].t;
    this.t = this.start;
    this.speed = 16;
    this.playing = false;
    this.draw = draw;
    this.onState = onState;
    this.frame = null;
    this.i = 0;
    this.render();
  }

  play() {
    if (this.playing) return;
    if (this.t >= this.end) this.seek(0);
    this.playing = true;
    let last = performance.now();
    const step = (now) => {
      this.t = Math.min(this.end, this.t + (now - last) * this.speed);
      last = now;
      this.render();
      if (this.t >= this.end) {
        this.pause();
        return;
      }
      this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
    this.onState(true);
  }

  pause() {
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
    if (this.playing) {
      this.playing = false;
      this.onState(false);
    }
  }

  /** Jumps to a share (0-1) of the trip. */
  seek(share) {
    this.t = this.start + Math.max(0, Math.min(1, share)) * (this.end - this.start);
    this.i = 0;
    this.render();
  }

  /** Where the vehicle was at the replay's time: between the two fixes around it. */
  render() {
    const p = this.points;
    while (this.i < p.length - 2 && p[this.i + 1].t <= this.t) this.i += 1;
    const a = p[this.i];
    const b = p[Math.min(this.i + 1, p.length - 1)];
    const f = b.t > a.t ? Math.max(0, Math.min(1, (this.t - a.t) / (b.t - a.t))) : 0;
    const progress = this.end > this.start ? (this.t - this.start) / (this.end - this.start) : 1;
    this.draw(a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f, progress, this.t);
  }

  destroy() {
    this.pause();
  }
}
