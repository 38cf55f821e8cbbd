// Notifications against a real fleetd demo: FleetOps' rule form (a 422 field error shown next to
// the bad address, fixed and saved, then listed), the notifications section's accessibility,
// and the bell: an SOS pushed through the vendor push receiver rings it live in FleetNow, and
// choosing the notification opens FleetNow on that vehicle.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { launchBrowser, login, newPage, screenshot, sleep, startFleetd } from './harness.mjs';

const PUSH_TOKEN = 'e2e-push-token';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let fleet;
let browser;
let adminApi;

before(async () => {
  fleet = await startFleetd({ FLEETD_PUSH_TOKEN: PUSH_TOKEN });
  browser = await launchBrowser();
  adminApi = await fleet.api(fleet.admin);
});

after(async () => {
  await browser?.close();
  await fleet?.stop();
});

async function until(what, fn, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const last = await fn();
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** The vendor's time format (UTC). */
function vendorTime(date) {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

/** Pushes an alarm as the vendor's Data Push does (`/push/pushalarm`, documented envelope). */
async function pushAlarm(imei, time, code, name) {
  const item = {
    type: 'DEVICE',
    msgClass: 0,
    gateTime: vendorTime(time),
    msg: { deviceImei: imei, alertType: code, alarmName: name, alarmTime: vendorTime(time), lat: -1.2921, lng: 36.8219, gpsSpeed: 0 },
  };
  const res = await fetch(`${fleet.base}/push/pushalarm`, {
    method: 'POST',
    body: new URLSearchParams({ token: PUSH_TOKEN, data_list: JSON.stringify([item]) }),
  });
  assert.equal(res.status, 200, await res.text());
}

test('the demo starts with a rule that rings the admin for SOS and power cuts', async () => {
  const { items } = await adminApi('/notifications/rules');
  const rule = items.find((r) => r.name === 'SOS and power cut');
  assert.ok(rule, JSON.stringify(items));
  assert.deepEqual(rule.kinds, ['alarm.safety', 'alarm.power']);
  assert.deepEqual(rule.channels, ['in_app']);
});

test('FleetOps: a rule made in the form shows the 422 error next to a bad e-mail, then saves', async () => {
  const page = await newPage(browser);
  await login(page, fleet.base, fleet.admin, '/ops?tab=notifications');
  await page.getByRole('button', { name: 'New rule' }).waitFor();
  assert.equal(await page.locator('#rule-form').isVisible(), false, 'the form opens on demand');
  await page.getByRole('button', { name: 'New rule' }).click();
  await page.getByLabel('Rule name').fill('Night SOS to the control room');
  await page.getByLabel(/^Safety alarm/).check();
  await page.getByLabel('E-mail', { exact: true }).check();
  await page.getByRole('button', { name: 'Add an address' }).click();
  await page.getByLabel('Address 1', { exact: true }).fill('control-room.example.com');
  await page.getByRole('button', { name: 'Save rule' }).click();

  const error = page.locator('.field-error[data-error-for="recipients.addresses[0].to"]');
  await error.waitFor();
  assert.match(await error.textContent(), /not an e-mail address/);
  // next to its field, which is marked invalid and described by it
  const input = page.getByLabel('Address 1', { exact: true });
  assert.equal(await input.getAttribute('aria-invalid'), 'true');
  assert.equal(await input.getAttribute('aria-describedby'), await error.getAttribute('id'));
  assert.equal(await error.evaluate((e) => e.previousElementSibling.id), 'r-addr-to-0');
  await screenshot(page, 'notifications-rule-error');

  await input.fill('control-room@example.com');
  await page.getByRole('button', { name: 'Save rule' }).click();
  const row = page.locator('[data-testid="rules"] tr', { hasText: 'Night SOS to the control room' });
  await row.waitFor();
  assert.equal(await page.locator('.field-error').count(), 0);
  const { items } = await adminApi('/notifications/rules');
  const saved = items.find((r) => r.name === 'Night SOS to the control room');
  assert.deepEqual(saved.recipients.addresses, [{ channel: 'email', to: 'control-room@example.com' }]);
  assert.deepEqual(saved.kinds, ['alarm.safety']);
  // the browser logs the refused save it was meant to get; nothing else
  assert.deepEqual(page.errors.filter((e) => !/status of 422/.test(e)), []);
});

test('FleetOps: the notifications section has no serious accessibility violations', async () => {
  const page = await newPage(browser);
  await login(page, fleet.base, fleet.admin, '/ops?tab=notifications');
  await page.getByRole('button', { name: 'New rule' }).click();
  await page.getByLabel(/^Idling too long/).check();
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  const serious = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  assert.deepEqual(serious, []);
  assert.deepEqual(page.errors, []);
});

test('the bell rings live for a pushed SOS and opens FleetNow on that vehicle', async () => {
  const me = await adminApi('/auth/me');
  await adminApi('/notifications/rules', {
    method: 'POST',
    body: {
      name: 'SOS to me',
      kinds: ['alarm.safety'],
      channels: ['in_app'],
      recipients: { user_ids: [me.user_id] },
      severity: 'critical',
    },
  });
  const live = await adminApi('/fleet/live');
  const vehicle = live.features.find((f) => f.properties.imei);
  const id = vehicle.properties.device_id;

  const page = await newPage(browser);
  await login(page, fleet.base, fleet.admin, '/');
  await page.waitForFunction(() => window.fleetNow && window.fleetNow.store.vehicles.size > 0);
  const before = (await adminApi('/me/notifications?limit=1')).unread;
  // set on this page load only: still there afterwards means nothing reloaded the page
  await page.evaluate(() => {
    window.__sameLoad = true;
  });
  await pushAlarm(vehicle.properties.imei, new Date(Date.now() - 2000), '1', 'SOS alert');

  const item = page.locator(`[data-testid="bell-list"] a[href*="device=${id}&"]`).first();
  const unread = async () => Number(await page.getByTestId('bell-count').textContent());
  // the vehicle may have older notifications in the list already: wait for the count to move
  await until('the SOS in the bell', async () => (await unread()) > before && (await item.count()) > 0);
  const count = await unread();
  assert.ok(count > before, `unread ${count} after ${before}`);
  assert.equal(await page.evaluate(() => window.__sameLoad), true, 'updated live, not by a reload');
  assert.match(await page.getByTestId('bell').getAttribute('aria-label'), /unread/);

  await page.getByTestId('bell').click();
  const href = await item.getAttribute('href');
  assert.match(href, new RegExp(`^/now/\\?device=${id}&at=`));
  await screenshot(page, 'notifications-bell');
  await item.click();
  await page.waitForURL((u) => u.pathname === '/now/' && u.searchParams.get('device') === String(id));
  await page.waitForFunction(() => window.fleetNow && window.fleetNow.store.vehicles.size > 0);
  const dock = page.locator('#dock');
  await dock.waitFor({ state: 'visible' });
  const name = await page.evaluate((d) => window.fleetNow.store.vehicles.get(d).name, id);
  assert.equal(await page.locator('#dock-title').textContent(), name);
  const { items } = await adminApi('/me/notifications?limit=50');
  const opened = items.find((n) => n.url === href);
  assert.ok(opened?.read_at, 'choosing it marked it read');
  assert.deepEqual(page.errors, []);
});
