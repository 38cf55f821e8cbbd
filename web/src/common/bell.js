// The bell in both apps' headers: the signed-in person's unread in-app notifications, a
// dropdown of the newest (unread marked) with "mark all read", kept current by the live
// stream's `notification` events. Choosing one marks it read and opens FleetNow on the vehicle
// at that moment.
import { api } from './api.js';
import { esc } from './format.js';

/** Notifications the dropdown shows. */
const SHOWN = 20;

const icon = `<svg aria-hidden="true" focusable="false" width="18" height="18" viewBox="0 0 24 24"><path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z"/></svg>`;

export class Bell {
  /** Renders into `host` (a header element) and loads the newest notifications. */
  constructor(host) {
    this.items = [];
    this.unread = 0;
    host.innerHTML = `
      <button type="button" class="bell-button" data-testid="bell" aria-expanded="false" aria-controls="bell-panel">
        ${icon}<span class="visually-hidden">Notifications</span>
        <span class="bell-count" data-testid="bell-count" hidden></span>
      </button>
      <div id="bell-panel" class="bell-panel" role="region" aria-label="Notifications" hidden>
        <div class="bell-head">
          <h2>Notifications</h2>
          <button type="button" class="link" data-action="read-all">Mark all read</button>
        </div>
        <ul class="bell-list" data-testid="bell-list"></ul>
      </div>`;
    this.host = host;
    this.button = host.querySelector('.bell-button');
    this.panel = host.querySelector('.bell-panel');
    this.button.addEventListener('click', () => this.toggle(this.panel.hidden));
    host.querySelector('[data-action="read-all"]').addEventListener('click', () => this.readAll());
    host.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !this.panel.hidden) {
        this.toggle(false);
        this.button.focus();
      }
    });
    document.addEventListener('click', (e) => {
      if (!this.panel.hidden && !host.contains(e.target)) this.toggle(false);
    });
    this.panel.addEventListener('click', (e) => {
      const item = e.target.closest('[data-notification]');
      if (item) {
        e.preventDefault();
        this.open(Number(item.dataset.notification));
      }
    });
    this.reload();
  }

  toggle(open) {
    this.panel.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
  }

  /** Re-reads the newest notifications and the unread count (at start and after a reset). */
  async reload() {
    try {
      const page = await api(`/me/notifications?limit=${SHOWN}`);
      this.items = page.items;
      this.unread = page.unread;
      this.render();
    } catch {
      // the bell stays as it was; the next reset or notification tries again
    }
  }

  /** A `notification` event of the live stream. */
  add(n) {
    if (this.items.some((i) => i.notification_id === n.notification_id)) return;
    this.items = [n, ...this.items].slice(0, SHOWN);
    if (!n.read_at) this.unread += 1;
    this.render();
  }

  async open(id) {
    const n = this.items.find((i) => i.notification_id === id);
    if (!n) return;
    try {
      const r = await api(`/me/notifications/${id}/read`, { method: 'POST' });
      n.read_at ??= new Date().toISOString();
      this.unread = r.unread;
      this.render();
    } catch {
      // opening the vehicle matters more than the mark
    }
    if (n.url) location.assign(n.url);
  }

  async readAll() {
    try {
      const r = await api('/me/notifications/read-all', { method: 'POST' });
      const now = new Date().toISOString();
      for (const i of this.items) i.read_at ??= now;
      this.unread = r.unread;
      this.render();
    } catch {
      // nothing changed; the person can try again
    }
  }

  render() {
    const count = this.host.querySelector('.bell-count');
    count.textContent = this.unread > 99 ? '99+' : String(this.unread);
    count.hidden = this.unread === 0;
    this.button.setAttribute(
      'aria-label',
      this.unread ? `Notifications, ${this.unread} unread` : 'Notifications, none unread',
    );
    const list = this.host.querySelector('.bell-list');
    if (this.items.length === 0) {
      list.innerHTML = '<li class="muted bell-empty">No notifications yet.</li>';
      return;
    }
    list.innerHTML = this.items
      .map((n) => {
        const when = new Date(n.event_time).toLocaleString();
        const state = n.read_at ? '' : '<span class="visually-hidden">Unread: </span>';
        return `<li class="${n.read_at ? 'read' : 'unread'} sev-${esc(n.severity)}">
          <a href="${esc(n.url || '#')}" data-notification="${n.notification_id}">
            ${state}<strong>${esc(n.title)}</strong>
            <span class="bell-body">${esc(n.body)}</span>
            <time datetime="${esc(n.event_time)}">${esc(when)}</time>
          </a></li>`;
      })
      .join('');
  }
}
