// FleetOps › Notifications › My notification settings (everyone): own contact points with a
// test message each, quiet hours, and rules muted for oneself.
import { api, ApiError } from '../common/api.js';
import { esc } from '../common/format.js';
import { clearErrors, showErrors } from './form-errors.js';

const $ = (id) => document.getElementById(id);
const NAMES = { email: 'E-mail', sms: 'SMS', telegram: 'Telegram' };
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

export class MySettings {
  constructor() {
    $('contact-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.addContact();
    });
    $('contacts-table').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-contact]');
      if (b) this.contactAction(Number(b.dataset.contact), b.dataset.action);
    });
    $('q-days').innerHTML = `<legend>Days</legend><div class="checks">${DAYS.map(
      (d, i) => `<span class="check"><input type="checkbox" id="q-day-${i + 1}" name="q-day" value="${i + 1}"><label for="q-day-${i + 1}">${d}</label></span>`,
    ).join('')}</div>`;
    $('quiet-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.saveQuiet();
    });
    $('mute-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.mute();
    });
    $('mutes-list').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-unmute]');
      if (b) this.unmute(Number(b.dataset.unmute));
    });
  }

  async load() {
    const [contacts, quiet, mutes, inbox] = await Promise.all([
      api('/me/contacts'),
      api('/me/quiet-hours'),
      api('/me/mutes'),
      api('/me/notifications?limit=200'),
    ]);
    this.contacts = contacts.items;
    this.drawContacts();
    $('q-from').value = quiet.from?.slice(0, 5) ?? '';
    $('q-to').value = quiet.to?.slice(0, 5) ?? '';
    $('q-critical').checked = quiet.except_critical;
    document.querySelectorAll('input[name="q-day"]').forEach((i) => {
      i.checked = quiet.days.includes(Number(i.value));
    });
    this.drawMutes(mutes.items);
    // the rules one can mute: those that told this person something
    const rules = new Map();
    for (const n of inbox.items) if (n.rule_id && n.kind !== 'test') rules.set(n.rule_id, n.title);
    for (const n of inbox.items) if (n.rule_id && !rules.has(n.rule_id)) rules.set(n.rule_id, n.title);
    $('m-rule').innerHTML = rules.size
      ? [...rules].map(([id, title]) => `<option value="${id}">Rule ${id} — e.g. “${esc(title)}”</option>`).join('')
      : '<option value="">No rule has notified you yet</option>';
  }

  drawContacts() {
    const host = $('contacts-table');
    host.innerHTML = this.contacts.length
      ? `<table><caption class="visually-hidden">My contact points</caption>
        <thead><tr><th scope="col">Channel</th><th scope="col">Address</th><th scope="col">Label</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
        <tbody>${this.contacts
          .map(
            (c) => `<tr><td>${esc(NAMES[c.channel] || c.channel)}</td><th scope="row">${esc(c.address)}</th><td>${esc(c.label)}</td>
            <td class="actions"><button type="button" data-contact="${c.contact_id}" data-action="test">Send test<span class="visually-hidden"> to ${esc(c.address)}</span></button>
            <button type="button" data-contact="${c.contact_id}" data-action="delete">Remove<span class="visually-hidden"> ${esc(c.address)}</span></button></td></tr>`,
          )
          .join('')}</tbody></table>`
      : '<p class="empty">No contact points: rules reach you in the apps only.</p>';
  }

  async addContact() {
    const form = $('contact-form');
    try {
      await api('/me/contacts', {
        method: 'POST',
        body: { channel: $('c-channel').value, address: $('c-address').value, label: $('c-label').value },
      });
      clearErrors(form);
      form.reset();
      this.contacts = (await api('/me/contacts')).items;
      this.drawContacts();
      $('contacts-status').textContent = 'Contact point added.';
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) showErrors(form, e.problem.errors, $('c-address'));
      else $('contacts-status').textContent = `Could not add it: ${e.message}`;
    }
  }

  async contactAction(id, action) {
    try {
      if (action === 'test') {
        await api(`/me/contacts/${id}/test`, { method: 'POST' });
        $('contacts-status').textContent = 'Test message queued; it should arrive within a minute.';
      } else {
        await api(`/me/contacts/${id}`, { method: 'DELETE' });
        this.contacts = this.contacts.filter((c) => c.contact_id !== id);
        this.drawContacts();
        $('contacts-status').textContent = 'Contact point removed.';
      }
    } catch (e) {
      $('contacts-status').textContent = `Could not do that: ${e.message}`;
    }
  }

  async saveQuiet() {
    const form = $('quiet-form');
    try {
      await api('/me/quiet-hours', {
        method: 'PUT',
        body: {
          from: $('q-from').value || null,
          to: $('q-to').value || null,
          days: [...document.querySelectorAll('input[name="q-day"]:checked')].map((i) => Number(i.value)),
          except_critical: $('q-critical').checked,
        },
      });
      clearErrors(form);
      $('quiet-status').textContent = 'Quiet hours saved.';
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) showErrors(form, e.problem.errors, $('q-from'));
      else $('quiet-status').textContent = `Could not save: ${e.message}`;
    }
  }

  drawMutes(items) {
    $('mutes-list').innerHTML = items.length
      ? items
          .map(
            (m) => `<li>${esc(m.rule_name)} — ${m.until ? `until ${esc(new Date(m.until).toLocaleString())}` : 'for good'}
            <button type="button" data-unmute="${m.rule_id}">Unmute<span class="visually-hidden"> ${esc(m.rule_name)}</span></button></li>`,
          )
          .join('')
      : '<li class="muted">No muted rules.</li>';
  }

  async mute() {
    const rule = $('m-rule').value;
    if (!rule) return;
    const hours = Number($('m-for').value);
    const until = hours ? new Date(Date.now() + hours * 3600_000).toISOString() : null;
    try {
      await api(`/me/mutes/${rule}`, { method: 'PUT', body: { until } });
      this.drawMutes((await api('/me/mutes')).items);
      $('mutes-status').textContent = 'Rule muted.';
    } catch (e) {
      $('mutes-status').textContent = `Could not mute: ${e.message}`;
    }
  }

  async unmute(rule) {
    try {
      await api(`/me/mutes/${rule}`, { method: 'DELETE' });
      this.drawMutes((await api('/me/mutes')).items);
      $('mutes-status').textContent = 'Rule unmuted.';
    } catch (e) {
      $('mutes-status').textContent = `Could not unmute: ${e.message}`;
    }
  }
}
