// FleetOps › Notifications › Rules (admins): the list of rules with edit, "send test" and
// delete, and the form that creates or edits one — events, per-event settings, vehicles and
// places, schedule, throttle, channels, recipients (users, addresses, webhooks), severity.
// The server checks the rule; its 422 field errors are shown next to the fields.
import { api, ApiError } from '../common/api.js';
import { esc } from '../common/format.js';
import { clearErrors, showErrors } from './form-errors.js';

const $ = (id) => document.getElementById(id);
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const PERSONAL = ['email', 'sms', 'telegram'];
const CHANNEL_NAMES = { email: 'E-mail', sms: 'SMS', telegram: 'Telegram', webhook: 'Webhook', in_app: 'In the apps (bell)' };
const PARAMS = [
  { key: 'alarm_types', label: 'Only these alarm type codes (comma-separated; empty: all)', type: 'text' },
  { key: 'overspeed_for_s', label: 'Overspeed sustained for at least (seconds)', type: 'number' },
  { key: 'overspeed_kmh', label: 'Overspeed only above (km/h)', type: 'number' },
  { key: 'idle_min', label: 'Idling longer than (minutes)', type: 'number' },
  { key: 'offline_min', label: 'Offline longer than (minutes)', type: 'number' },
  { key: 'not_moved_by', label: 'Not moved by (time of day)', type: 'time' },
];

const checks = (name, options, legend, field) => `
  <fieldset data-field="${field}" tabindex="-1"><legend>${esc(legend)}</legend>
    <div class="checks">${options
      .map(([value, label], i) => `<span class="check"><input type="checkbox" id="r-${name}-${i}" name="${name}" value="${esc(value)}"><label for="r-${name}-${i}">${esc(label)}</label></span>`)
      .join('')}</div>
  </fieldset>`;

const multi = (id, label, field, options) => `
  <div class="field"><label for="${id}">${esc(label)}</label>
    <select id="${id}" multiple size="4" data-field="${field}">${options
      .map(([v, l]) => `<option value="${esc(v)}">${esc(l)}</option>`)
      .join('')}</select></div>`;

export class Rules {
  constructor(ctx) {
    this.ctx = ctx;
    this.editing = null;
    this.rules = [];
  }

  async load() {
    const [catalogue, users, geofences, webhooks, rules] = await Promise.all([
      this.catalogue ? null : api('/notifications/kinds'),
      api('/users'),
      api('/geofences'),
      api('/notifications/webhooks'),
      api('/notifications/rules'),
    ]);
    this.catalogue ??= catalogue;
    Object.assign(this, { users: users.items, geofences: geofences.items, webhooks: webhooks.items });
    this.rules = rules.items;
    if (!this.built) this.build();
    this.fillRecipients();
    this.renderList();
  }

  build() {
    this.built = true;
    const { devices } = this.ctx;
    const distinct = (values) => [...new Set(values.filter(Boolean))].sort((a, b) => a.localeCompare(b));
    const form = $('rule-form');
    form.innerHTML = `
      <h3 id="rule-form-h">New rule</h3>
      <div class="form-grid">
        <div class="field"><label for="r-name">Rule name</label><input id="r-name" data-field="name" maxlength="200" autocomplete="off"></div>
        <div class="field"><label for="r-severity">Severity</label><select id="r-severity" data-field="severity">
          <option value="info">Info</option><option value="warning" selected>Warning</option><option value="critical">Critical (reaches quiet hours)</option></select></div>
        <div class="field"><label for="r-throttle">At most one message per vehicle every … seconds (0: every event)</label><input id="r-throttle" type="number" min="0" max="604800" value="0" data-field="throttle_s"></div>
        <div class="field check"><input type="checkbox" id="r-enabled" checked><label for="r-enabled">Enabled</label></div>
      </div>
      ${checks('kind', this.catalogue.items.map((k) => [k.kind, k.label]), 'Events', 'kinds')}
      <fieldset id="r-params"><legend>Settings of the chosen events</legend><div class="form-grid">
        ${PARAMS.map((p) => `<div class="field" data-param="${p.key}" hidden><label for="p-${p.key}">${esc(p.label)}</label><input id="p-${p.key}" type="${p.type}" data-field="params.${p.key}"${p.type === 'number' ? ' min="0" step="any"' : ''}></div>`).join('')}
        <p class="muted" data-param-none>None for these events.</p>
      </div></fieldset>
      <fieldset data-field="scope"><legend>Vehicles and places (none chosen: the whole fleet)</legend><div class="form-grid">
        ${multi('r-devices', 'Vehicles', 'scope.device_ids', devices.map((d) => [d.device_id, d.name || d.plate || d.imei]))}
        ${multi('r-cost-centres', 'Vehicles of cost centres', 'scope.cost_centres', distinct(devices.map((d) => d.cost_centre)).map((c) => [c, c]))}
        ${multi('r-cities', 'Vehicles in cities', 'scope.cities', distinct(devices.map((d) => d.city)).map((c) => [c, c]))}
        <div data-geofences></div>
      </div></fieldset>
      <fieldset data-field="schedule"><legend>When (fleet time)</legend>
        <span class="check"><input type="checkbox" id="r-sched-on"><label for="r-sched-on">Only on some days and hours</label></span>
        <div id="r-sched" hidden>
          ${checks('day', DAYS.map((d, i) => [i + 1, d]), 'Days', 'schedule.days')}
          <div class="form-grid">
            <div class="field"><label for="r-from">From</label><input id="r-from" type="time" value="18:00" data-field="schedule.from"></div>
            <div class="field"><label for="r-to">To (before From: over midnight)</label><input id="r-to" type="time" value="06:00" data-field="schedule.to"></div>
          </div>
        </div>
      </fieldset>
      ${checks('channel', this.catalogue.channels.map((c) => [c, CHANNEL_NAMES[c] || c]), 'Channels', 'channels')}
      <fieldset data-field="recipients" tabindex="-1"><legend>Recipients</legend>
        <div class="form-grid"><div data-users></div><div data-webhooks></div></div>
        <div id="r-addresses" data-field="recipients.addresses"></div>
        <button type="button" id="r-add-address">Add an address</button>
      </fieldset>
      <div class="toolbar">
        <button type="submit" class="primary">Save rule</button>
        <button type="button" id="r-cancel">Cancel</button>
        <span id="r-status" class="muted" role="status"></span>
      </div>`;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
    form.addEventListener('change', (e) => {
      if (e.target.name === 'kind') this.showParams();
      if (e.target.id === 'r-sched-on') $('r-sched').hidden = !e.target.checked;
    });
    $('r-add-address').addEventListener('click', () => {
      const rows = this.addressRows();
      rows.push({ channel: 'email', to: '' });
      this.drawAddresses(rows);
      form.querySelector('#r-addresses .address-row:last-child input')?.focus();
    });
    $('r-addresses').addEventListener('click', (e) => {
      const b = e.target.closest('[data-remove]');
      if (!b) return;
      const rows = this.addressRows();
      rows.splice(Number(b.dataset.remove), 1);
      this.drawAddresses(rows);
      $('r-add-address').focus();
    });
    $('r-cancel').addEventListener('click', () => this.close());
    $('rule-new').addEventListener('click', () => this.edit(null));
    $('rules-table').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-rule]');
      if (!b) return;
      const id = Number(b.dataset.rule);
      if (b.dataset.action === 'edit') this.edit(this.rules.find((r) => r.rule_id === id));
      if (b.dataset.action === 'test') this.test(id);
      if (b.dataset.action === 'delete') this.remove(id);
    });
  }

  /** Users, geofences and webhooks change between loads. */
  fillRecipients() {
    const form = $('rule-form');
    form.querySelector('[data-users]').innerHTML = multi('r-users', 'Users (their own contact points, and the bell)', 'recipients.user_ids', this.users.map((u) => [u.user_id, u.display_name || u.username]));
    form.querySelector('[data-webhooks]').innerHTML = multi('r-webhooks', 'Webhooks', 'recipients.webhook_ids', this.webhooks.map((w) => [w.webhook_id, w.name]));
    form.querySelector('[data-geofences]').innerHTML = multi('r-geofences', 'Only events in these geofences', 'scope.geofence_ids', this.geofences.map((g) => [g.geofence_id, g.name]));
  }

  showParams() {
    const kinds = new Set(this.checked('kind'));
    const wanted = new Set(this.catalogue.items.filter((k) => kinds.has(k.kind)).flatMap((k) => k.params));
    const form = $('rule-form');
    form.querySelectorAll('[data-param]').forEach((el) => {
      el.hidden = !wanted.has(el.dataset.param);
    });
    form.querySelector('[data-param-none]').hidden = wanted.size > 0;
  }

  checked(name) {
    return [...$('rule-form').querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
  }

  setChecked(name, values) {
    const set = new Set(values.map(String));
    $('rule-form').querySelectorAll(`input[name="${name}"]`).forEach((i) => {
      i.checked = set.has(i.value);
    });
  }

  addressRows() {
    return [...$('r-addresses').querySelectorAll('.address-row')].map((row) => ({
      channel: row.querySelector('select').value,
      to: row.querySelector('input').value,
    }));
  }

  drawAddresses(rows) {
    $('r-addresses').innerHTML = rows
      .map(
        (a, i) => `<div class="address-row">
          <div class="field"><label for="r-addr-ch-${i}">Address ${i + 1}: channel</label>
            <select id="r-addr-ch-${i}" data-field="recipients.addresses[${i}].channel">${PERSONAL.map((c) => `<option value="${c}"${c === a.channel ? ' selected' : ''}>${CHANNEL_NAMES[c]}</option>`).join('')}</select></div>
          <div class="field"><label for="r-addr-to-${i}">Address ${i + 1}</label>
            <input id="r-addr-to-${i}" value="${esc(a.to)}" data-field="recipients.addresses[${i}].to" autocomplete="off"></div>
          <button type="button" data-remove="${i}">Remove address ${i + 1}</button>
        </div>`,
      )
      .join('');
  }

  edit(rule) {
    this.editing = rule?.rule_id ?? null;
    const form = $('rule-form');
    clearErrors(form);
    $('rule-form-h').textContent = rule ? `Edit rule “${rule.name}”` : 'New rule';
    $('r-name').value = rule?.name ?? '';
    $('r-severity').value = rule?.severity ?? 'warning';
    $('r-throttle').value = rule?.throttle_s ?? 0;
    $('r-enabled').checked = rule?.enabled ?? true;
    this.setChecked('kind', rule?.kinds ?? []);
    this.setChecked('channel', rule?.channels ?? ['in_app']);
    const sel = (id, values) => {
      const set = new Set((values ?? []).map(String));
      for (const o of $(id).options) o.selected = set.has(o.value);
    };
    sel('r-devices', rule?.scope.device_ids);
    sel('r-cost-centres', rule?.scope.cost_centres);
    sel('r-cities', rule?.scope.cities);
    sel('r-geofences', rule?.scope.geofence_ids);
    sel('r-users', rule?.recipients.user_ids ?? (rule ? [] : [this.ctx.me.user_id]));
    sel('r-webhooks', rule?.recipients.webhook_ids);
    this.drawAddresses(rule?.recipients.addresses ?? []);
    $('r-sched-on').checked = Boolean(rule?.schedule);
    $('r-sched').hidden = !rule?.schedule;
    this.setChecked('day', rule?.schedule?.days ?? [1, 2, 3, 4, 5]);
    $('r-from').value = rule?.schedule?.from?.slice(0, 5) ?? '18:00';
    $('r-to').value = rule?.schedule?.to?.slice(0, 5) ?? '06:00';
    for (const p of PARAMS) {
      const v = rule?.params?.[p.key];
      $(`p-${p.key}`).value = v === undefined || v === null ? '' : Array.isArray(v) ? v.join(', ') : p.type === 'time' ? String(v).slice(0, 5) : v;
    }
    this.showParams();
    $('r-status').textContent = '';
    form.hidden = false;
    $('r-name').focus();
  }

  close() {
    $('rule-form').hidden = true;
    $('rule-new').focus();
  }

  body() {
    const ints = (id) => [...$(id).selectedOptions].map((o) => Number(o.value));
    const texts = (id) => [...$(id).selectedOptions].map((o) => o.value);
    const params = {};
    for (const p of PARAMS) {
      if ($(`p-${p.key}`).closest('[data-param]').hidden) continue;
      const raw = $(`p-${p.key}`).value.trim();
      if (!raw) continue;
      if (p.key === 'alarm_types') params[p.key] = raw.split(',').map((s) => s.trim()).filter(Boolean);
      else params[p.key] = p.type === 'number' ? Number(raw) : raw;
    }
    return {
      name: $('r-name').value,
      enabled: $('r-enabled').checked,
      severity: $('r-severity').value,
      throttle_s: Number($('r-throttle').value || 0),
      kinds: this.checked('kind'),
      channels: this.checked('channel'),
      scope: {
        device_ids: ints('r-devices'),
        cost_centres: texts('r-cost-centres'),
        cities: texts('r-cities'),
        geofence_ids: ints('r-geofences'),
      },
      schedule: $('r-sched-on').checked
        ? { days: this.checked('day').map(Number), from: $('r-from').value, to: $('r-to').value }
        : null,
      params,
      recipients: {
        user_ids: ints('r-users'),
        addresses: this.addressRows(),
        webhook_ids: ints('r-webhooks'),
      },
    };
  }

  async save() {
    const form = $('rule-form');
    const status = $('r-status');
    status.textContent = 'Saving…';
    try {
      const path = this.editing ? `/notifications/rules/${this.editing}` : '/notifications/rules';
      const saved = await api(path, { method: this.editing ? 'PUT' : 'POST', body: this.body() });
      clearErrors(form);
      form.hidden = true;
      await this.load();
      $('rules-status').textContent = `Saved “${saved.name}”.`;
      $('rule-new').focus();
    } catch (e) {
      if (e instanceof ApiError && e.status === 422 && e.problem?.errors?.length) {
        status.textContent = 'Please correct the marked fields.';
        showErrors(form, e.problem.errors, $('rule-form-h'));
      } else {
        status.textContent = `Could not save: ${e.message}`;
      }
    }
  }

  async test(id) {
    const status = $('rules-status');
    try {
      const r = await api(`/notifications/rules/${id}/test`, { method: 'POST' });
      status.textContent = `Test queued: ${r.deliveries.length} message(s), ${r.notifications.length} in-app.`;
    } catch (e) {
      status.textContent = `Could not send the test: ${e.message}`;
    }
  }

  async remove(id) {
    const rule = this.rules.find((r) => r.rule_id === id);
    if (!window.confirm(`Delete the rule “${rule?.name}”?`)) return;
    try {
      await api(`/notifications/rules/${id}`, { method: 'DELETE' });
      await this.load();
      $('rules-status').textContent = `Deleted “${rule?.name}”.`;
    } catch (e) {
      $('rules-status').textContent = `Could not delete: ${e.message}`;
    }
  }

  renderList() {
    const label = new Map(this.catalogue.items.map((k) => [k.kind, k.label.split(':')[0]]));
    const host = $('rules-table');
    if (!this.rules.length) {
      host.innerHTML = '<p class="empty">No rules yet: nobody is notified of anything.</p>';
      return;
    }
    host.innerHTML = `<div class="scroll" tabindex="0" role="region" aria-label="Notification rules"><table data-testid="rules">
      <caption class="visually-hidden">Notification rules</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Events</th><th scope="col">Channels</th><th scope="col">Recipients</th><th scope="col">Severity</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>${this.rules
        .map((r) => {
          const who = [
            r.recipients.user_ids.length ? `${r.recipients.user_ids.length} user(s)` : '',
            r.recipients.addresses.length ? `${r.recipients.addresses.length} address(es)` : '',
            r.recipients.webhook_ids.length ? `${r.recipients.webhook_ids.length} webhook(s)` : '',
          ].filter(Boolean).join(', ');
          return `<tr data-rule-id="${r.rule_id}"><th scope="row">${esc(r.name)}</th>
            <td>${esc(r.kinds.map((k) => label.get(k) || k).join(', '))}</td>
            <td>${esc(r.channels.map((c) => CHANNEL_NAMES[c] || c).join(', '))}</td>
            <td>${esc(who)}</td><td>${esc(r.severity)}</td><td>${r.enabled ? 'Enabled' : 'Disabled'}</td>
            <td class="actions"><button type="button" data-rule="${r.rule_id}" data-action="edit">Edit<span class="visually-hidden"> ${esc(r.name)}</span></button>
              <button type="button" data-rule="${r.rule_id}" data-action="test">Send test<span class="visually-hidden"> of ${esc(r.name)}</span></button>
              <button type="button" data-rule="${r.rule_id}" data-action="delete">Delete<span class="visually-hidden"> ${esc(r.name)}</span></button></td></tr>`;
        })
        .join('')}</tbody></table></div>`;
  }
}
