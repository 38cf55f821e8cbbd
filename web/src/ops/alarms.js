// The alarm feed: the API's alarms of the range with class, status and vehicle filters, a page
// at a time. Operators and admins acknowledge from here; an acknowledged alarm leaves the open
// list at once. Viewers get no button (the API would refuse them anyway).
import { api, query } from '../common/api.js';
import { addDays, esc, localDate, localTime, num } from '../common/format.js';
import { canOperate, showError } from '../common/shell.js';
import { dayStart } from './dates.js';
import { inScope } from './reports.js';
import { renderTable, loading } from './table.js';

const CLASSES = ['safety', 'security', 'power', 'driving', 'geofence', 'device', 'other'];
const PAGE = 50;
const $ = (id) => document.getElementById(id);
let cursors = [undefined];
let nextAfter = null;
let rows = [];
let rangeKey = '';

export function initAlarms(ctx, reload) {
  for (const c of CLASSES) $('a-class').add(new Option(c, c));
  for (const d of [...ctx.devices].sort((a, b) => a.name.localeCompare(b.name))) $('a-vehicle').add(new Option(d.name, d.device_id));
  $('alarm-filters').addEventListener('change', () => {
    cursors = [undefined];
    reload();
  });
  $('alarm-filters').addEventListener('submit', (e) => e.preventDefault());
  $('alarms-next').addEventListener('click', () => {
    cursors.push(nextAfter);
    reload();
  });
  $('alarms-prev').addEventListener('click', () => {
    cursors.pop();
    reload();
  });
  $('alarms-table').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-ack]');
    if (button) acknowledge(button);
  });
}

export async function loadAlarms(ctx) {
  const { from, to } = ctx.view;
  if (rangeKey !== `${from}/${to}`) {
    cursors = [undefined]; // another range: back to its newest alarms
    rangeKey = `${from}/${to}`;
  }
  const status = $('a-status').value;
  const host = $('alarms-table');
  loading(host, 'Loading alarms…');
  const page = await api(
    `/alarms${query({
      from: dayStart(from, ctx.tz),
      to: dayStart(addDays(to, 1), ctx.tz),
      class: $('a-class').value,
      acknowledged: status === '' ? undefined : status === 'acknowledged',
      device_id: $('a-vehicle').value,
      limit: PAGE,
      after: cursors.at(-1),
    })}`,
  );
  if (!ctx.current()) return;
  nextAfter = page.next_after;
  $('alarms-prev').disabled = cursors.length === 1;
  $('alarms-next').disabled = !nextAfter;
  // the alarm list has no cost centre or city filter: the page is narrowed to the chosen vehicles
  const byId = new Map(ctx.devices.map((d) => [d.device_id, d]));
  rows = page.items.filter((a) => !byId.has(a.device_id) || inScope(ctx, byId.get(a.device_id)));
  $('alarms-status').textContent = `${rows.length} ${rows.length === 1 ? 'alarm' : 'alarms'} on this page`;
  const operate = canOperate(ctx.me);
  const at = (iso) => `${localDate(new Date(iso), ctx.tz)} ${localTime(new Date(iso), ctx.tz)}`;
  renderTable(host, {
    caption: 'Alarms',
    empty: status === 'open' ? 'No open alarms in this range.' : 'No alarms in this range.',
    rows,
    rowAttrs: (a) => `data-alarm="${esc(alarmPath(a))}"`,
    columns: [
      { key: 'time', label: 'Time', value: (a) => a.alarm_time, text: (a) => at(a.alarm_time) },
      { key: 'vehicle', label: 'Vehicle', value: (a) => a.device_name },
      { key: 'alarm', label: 'Alarm', value: (a) => a.alarm_name },
      {
        key: 'status',
        label: 'Status',
        value: (a) => (a.acknowledged ? 1 : 0),
        html: (a) =>
          a.acknowledged
            ? `Acknowledged${a.acknowledged_by_username ? ` by ${esc(a.acknowledged_by_username)}` : ''}`
            : operate
              ? `<button type="button" data-ack="${esc(alarmPath(a))}" aria-label="Acknowledge ${esc(a.alarm_name)} of ${esc(a.device_name)}">Acknowledge</button>`
              : 'Open',
      },
      { key: 'class', label: 'Class', value: (a) => a.alarm_class },
      { key: 'speed', label: 'km/h', numeric: true, value: (a) => a.speed_kmh, text: (a) => num(a.speed_kmh) },
    ],
  });
}

/** The alarm's key as the acknowledge route names it: device, exact time, type. */
function alarmPath(a) {
  return `${a.device_id}/${encodeURIComponent(a.alarm_time)}/${encodeURIComponent(a.alarm_type)}`;
}

async function acknowledge(button) {
  button.disabled = true;
  const path = button.dataset.ack;
  try {
    const done = await api(`/alarms/${path}/ack`, { method: 'POST', body: {} });
    const i = rows.findIndex((a) => alarmPath(a) === path);
    const row = button.closest('tr');
    if ($('a-status').value === 'open') {
      if (i >= 0) rows.splice(i, 1);
      row.remove();
      if (!rows.length) $('alarms-table').innerHTML = '<p class="empty">No open alarms left on this page.</p>';
      $('alarms-status').textContent = `Alarm acknowledged; ${rows.length} open on this page`;
    } else {
      if (i >= 0) rows[i] = done;
      button.replaceWith(`Acknowledged by ${done.acknowledged_by_username ?? 'you'}`);
      $('alarms-status').textContent = 'Alarm acknowledged';
    }
  } catch (e) {
    button.disabled = false;
    showError(`Could not acknowledge the alarm: ${e.message}`);
  }
}
