// FleetOps › Notifications › Webhooks and the delivery log (admins). A new webhook's signing
// secret is shown once, right after it is created or rotated. The log lists every message with
// its attempts; dead letters can be queued again.
import { api, ApiError } from '../common/api.js';
import { esc } from '../common/format.js';
import { clearErrors, showErrors } from './form-errors.js';

const $ = (id) => document.getElementById(id);

export class Webhooks {
  constructor(onChange) {
    this.onChange = onChange;
    $('webhook-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.create();
    });
    $('webhooks-table').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-webhook]');
      if (b) this.act(Number(b.dataset.webhook), b.dataset.action);
    });
  }

  async load() {
    this.items = (await api('/notifications/webhooks')).items;
    const host = $('webhooks-table');
    host.innerHTML = this.items.length
      ? `<div class="scroll" tabindex="0" role="region" aria-label="Webhooks"><table>
        <caption class="visually-hidden">Webhooks</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">URL</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
        <tbody>${this.items
          .map(
            (w) => `<tr><th scope="row">${esc(w.name)}</th><td>${esc(w.url)}</td><td>${w.active ? 'Active' : 'Inactive'}</td>
            <td class="actions"><button type="button" data-webhook="${w.webhook_id}" data-action="rotate">New secret<span class="visually-hidden"> for ${esc(w.name)}</span></button>
            <button type="button" data-webhook="${w.webhook_id}" data-action="delete">Delete<span class="visually-hidden"> ${esc(w.name)}</span></button></td></tr>`,
          )
          .join('')}</tbody></table></div>`
      : '<p class="empty">No webhooks.</p>';
  }

  showSecret(name, secret) {
    $('webhook-secret').innerHTML = `<p>Signing secret of <strong>${esc(name)}</strong> — copy it now, it is not shown again:</p><code data-testid="webhook-secret">${esc(secret)}</code>`;
    $('webhook-secret').hidden = false;
  }

  async create() {
    const form = $('webhook-form');
    try {
      const w = await api('/notifications/webhooks', {
        method: 'POST',
        body: { name: $('w-name').value, url: $('w-url').value },
      });
      clearErrors(form);
      form.reset();
      this.showSecret(w.name, w.secret);
      await this.load();
      this.onChange();
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) showErrors(form, e.problem.errors, $('w-name'));
      else $('webhook-status').textContent = `Could not add the webhook: ${e.message}`;
    }
  }

  async act(id, action) {
    const w = this.items.find((x) => x.webhook_id === id);
    try {
      if (action === 'rotate') {
        const r = await api(`/notifications/webhooks/${id}/rotate`, { method: 'POST' });
        this.showSecret(w.name, r.secret);
      } else if (action === 'delete' && window.confirm(`Delete the webhook “${w.name}”? Rules lose it.`)) {
        await api(`/notifications/webhooks/${id}`, { method: 'DELETE' });
        await this.load();
        this.onChange();
      }
    } catch (e) {
      $('webhook-status').textContent = `Could not change the webhook: ${e.message}`;
    }
  }
}

export class DeliveryLog {
  constructor() {
    this.pages = [undefined];
    $('delivery-filters').addEventListener('change', () => {
      this.pages = [undefined];
      this.load();
    });
    $('delivery-filters').addEventListener('submit', (e) => e.preventDefault());
    $('deliveries-next').addEventListener('click', () => {
      if (!this.next) return;
      this.pages.push(this.next);
      this.load();
    });
    $('deliveries-prev').addEventListener('click', () => {
      if (this.pages.length < 2) return;
      this.pages.pop();
      this.load();
    });
    $('deliveries-table').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-retry]');
      if (b) this.retry(Number(b.dataset.retry));
    });
  }

  async load() {
    const q = new URLSearchParams({ limit: '50' });
    if ($('d-state').value) q.set('state', $('d-state').value);
    if ($('d-channel').value) q.set('channel', $('d-channel').value);
    const after = this.pages[this.pages.length - 1];
    if (after) q.set('after', after);
    const page = await api(`/notifications/deliveries?${q}`);
    this.next = page.next_after;
    $('deliveries-next').disabled = !page.next_after;
    $('deliveries-prev').disabled = this.pages.length < 2;
    const host = $('deliveries-table');
    if (!page.items.length) {
      host.innerHTML = '<p class="empty">No messages.</p>';
      return;
    }
    host.innerHTML = `<div class="scroll" tabindex="0" role="region" aria-label="Delivery log"><table>
      <caption class="visually-hidden">Delivery log</caption>
      <thead><tr><th scope="col">Created</th><th scope="col">Rule</th><th scope="col">Channel</th><th scope="col">To</th><th scope="col">State</th><th scope="col" class="num">Attempts</th><th scope="col">Last error</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${page.items
        .map((d) => {
          const attempts = d.attempt_log
            .map((a) => `#${a.attempt} ${esc(a.outcome)}${a.status_code ? ` ${a.status_code}` : ''}${a.latency_ms !== null ? ` (${a.latency_ms} ms)` : ''}`)
            .join('<br>');
          return `<tr><td>${esc(new Date(d.created_at).toLocaleString())}</td>
            <td>${esc(d.rule_name ?? (d.is_test ? 'test' : '—'))}${d.is_test ? ' <span class="status">test</span>' : ''}</td>
            <td>${esc(d.channel)}</td><td>${esc(d.address)}</td>
            <td><span class="status state-${esc(d.state)}">${esc(d.state)}</span></td>
            <td class="num">${d.attempts}${attempts ? `<details><summary>Attempts</summary>${attempts}</details>` : ''}</td>
            <td>${esc(d.last_error ?? '')}</td>
            <td>${d.state === 'dead' ? `<button type="button" data-retry="${d.delivery_id}">Retry<span class="visually-hidden"> message ${d.delivery_id}</span></button>` : ''}</td></tr>`;
        })
        .join('')}</tbody></table></div>`;
  }

  async retry(id) {
    try {
      await api(`/notifications/deliveries/${id}/retry`, { method: 'POST' });
      $('deliveries-status').textContent = `Message ${id} queued again.`;
      await this.load();
    } catch (e) {
      $('deliveries-status').textContent = `Could not retry: ${e.message}`;
    }
  }
}
