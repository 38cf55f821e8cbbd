// FleetOps against a real fleetd demo: KPI tiles equal to the API's rollup, acknowledging
// alarms by role, the trips table (paging order, sorting, CSV), charts and the freshness
// banner, the phone layout, keyboard navigation and the URL-kept view.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { launchBrowser, login, newPage, screenshot, sleep, startFleetd } from './harness.mjs';
import { addDays, km, localDate, localTime, minutes, num, pct } from '../src/common/format.js';
import { dayStart } from '../src/ops/dates.js';

let fleet;
let browser;
let viewerApi;
let tz;
let range; // the page's default: the last 7 local days

before(async () => {
  fleet = await startFleetd();
  browser = await launchBrowser();
  viewerApi = await fleet.api(fleet.viewer);
  tz = (await viewerApi('/settings/analytics')).global.timezone;
  const to = localDate(new Date(), tz);
  range = { from: addDays(to, -6), to };
  // the trip builder and the KPI step turn the simulator's history into KPI rows within seconds
  await until('KPI rows with distance', async () => {
    const { items } = await viewerApi(`/kpis/rollup?from=${range.from}&to=${range.to}`);
    return items[0]?.distance_m > 0;
  });
});

after(async () => {
  await browser?.close();
  await fleet?.stop();
});

async function until(what, check, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(1000);
  }
}

async function openOps(user, search = '', viewport) {
  const page = await newPage(browser, viewport);
  await login(page, fleet.base, user, `/ops${search}`);
  return page;
}

/** What each tile shows, formatted from the rollup row as a reader expects it. */
const expectedTiles = {
  distance: (r) => [r.distance_m, km(r.distance_m / 1000)],
  driving: (r) => [r.driving_s, minutes(r.driving_s / 60)],
  idle_ratio: (r) => [r.idle_ratio, pct(r.idle_ratio * 100, 1)],
  utilisation: (r) => [r.utilisation, pct(r.utilisation * 100, 1)],
  overspeed: (r) => [r.overspeed_per_100km, num(r.overspeed_per_100km, 2)],
  score: (r) => [r.driving_score, num(r.driving_score, 1)],
  active: (r) => [r.vehicles_moved, num(r.vehicles_moved)],
  not_moved: (r) => [r.vehicle_days_not_moved, num(r.vehicle_days_not_moved)],
  idle_cost: (r) => [r.idle_cost, `${num(r.idle_cost)} ${r.currency}`],
  freshness: (r) => [r.last_fix_time, `${localDate(new Date(r.last_fix_time), tz)} ${localTime(new Date(r.last_fix_time), tz)}`],
};

async function readTiles(page) {
  await page.locator('#tiles [data-kpi]').first().waitFor();
  return page.$$eval('#tiles [data-kpi]', (tiles) =>
    Object.fromEntries(tiles.map((t) => [t.dataset.kpi, { value: t.dataset.value, text: t.querySelector('.value').textContent.trim() }])),
  );
}

function tileMismatches(shown, row) {
  const wrong = [];
  for (const [kpi, expect] of Object.entries(expectedTiles)) {
    const [value, text] = expect(row);
    assert.notEqual(value, null, `${kpi}: the demo's rollup has a figure`);
    const got = shown[kpi];
    if (!got || got.value !== String(value) || got.text !== text) wrong.push(`${kpi}: shows ${JSON.stringify(got)}, API ${value} "${text}"`);
  }
  return wrong;
}

test('a viewer sees KPI tiles equal to the API rollup of the last 7 days, compared with the 7 before', async () => {
  const page = await openOps(fleet.viewer);
  // the fleet is live: the page must match the rollup as read just before or just after it
  let wrong;
  for (let attempt = 0; attempt < 6; attempt++) {
    const before = (await viewerApi(`/kpis/rollup?from=${range.from}&to=${range.to}`)).items[0];
    if (attempt) await page.reload();
    const shown = await readTiles(page);
    const after = (await viewerApi(`/kpis/rollup?from=${range.from}&to=${range.to}`)).items[0];
    const a = tileMismatches(shown, before);
    const b = tileMismatches(shown, after);
    wrong = a.length <= b.length ? a : b;
    if (!wrong.length) break;
  }
  assert.deepEqual(wrong, []);
  assert.equal(await page.locator('#tiles [data-kpi]').count(), Object.keys(expectedTiles).length);
  // the comparison names the previous period and says whether the change is good or bad
  const deltas = await page.locator('#tiles .delta').allTextContents();
  assert.ok(deltas.some((d) => /previous 7 days/.test(d)), deltas.join(' | '));
  // the default range is in the pickers and the URL
  assert.equal(await page.getByLabel('From', { exact: true }).inputValue(), range.from);
  assert.equal(await page.getByLabel('To', { exact: true }).inputValue(), range.to);
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('from'), range.from);
  assert.equal(url.searchParams.get('to'), range.to);
  await screenshot(page, 'fleetops-overview');
  assert.deepEqual(page.errors, []);
});

test('a chosen range and city are kept in the URL; the tiles then show the rollup of that city\'s vehicles', async () => {
  const page = await openOps(fleet.viewer);
  await readTiles(page);
  const cities = (await page.locator('#f-city option').allTextContents()).slice(1);
  assert.ok(cities.length > 0, 'cities of the live fleet are offered');
  const city = cities[0];
  const from = addDays(range.to, -2);
  await page.getByLabel('From', { exact: true }).fill(from);
  await page.getByLabel('City', { exact: true }).selectOption(city);
  await page.waitForURL((u) => u.searchParams.get('city') === city && u.searchParams.get('from') === from);
  await page.reload();
  await readTiles(page);
  assert.equal(await page.getByLabel('From', { exact: true }).inputValue(), from);
  assert.equal(await page.getByLabel('City', { exact: true }).inputValue(), city);
  let wrong;
  for (let attempt = 0; attempt < 6; attempt++) {
    const rowOf = async () => (await viewerApi(`/kpis/rollup?from=${from}&to=${range.to}&city=${encodeURIComponent(city)}`)).items[0];
    const before = await rowOf();
    if (attempt) await page.reload();
    const shown = await readTiles(page);
    const after = await rowOf();
    const a = tileMismatches(shown, before);
    const b = tileMismatches(shown, after);
    wrong = a.length <= b.length ? a : b;
    if (!wrong.length) break;
  }
  assert.deepEqual(wrong, []);
  assert.deepEqual(page.errors, []);
});

test('an operator acknowledges an alarm and it leaves the open list; a viewer gets no button and the API refuses them', async () => {
  const opsApi = await fleet.api(fleet.operator);
  const open = async () =>
    (await opsApi(`/alarms?acknowledged=false&from=${dayStart(range.from, tz)}&to=${dayStart(addDays(range.to, 1), tz)}&limit=50`)).items;
  await until('an open alarm from the simulator', async () => (await open()).length > 0);

  const page = await openOps(fleet.operator, '?tab=alarms');
  const button = page.locator('#alarms-table button[data-ack]').first();
  await button.waitFor();
  const key = await button.getAttribute('data-ack');
  const [deviceId, time, type] = key.split('/').map(decodeURIComponent);
  const row = page.locator(`#alarms-table tr[data-alarm="${key}"]`);
  assert.equal(await row.count(), 1);
  await button.click();
  await row.waitFor({ state: 'detached' });
  const acked = (await opsApi(`/alarms?acknowledged=true&device_id=${deviceId}&limit=1000`)).items;
  const alarm = acked.find((a) => a.alarm_time === time && a.alarm_type === type);
  assert.ok(alarm, 'the API lists the alarm as acknowledged');
  assert.equal(alarm.acknowledged_by_username, 'ops');
  // the open list, reloaded, no longer has it either
  await page.reload();
  await page.locator('#alarms-table tbody tr, #alarms-table .empty').first().waitFor();
  assert.equal(await page.locator(`#alarms-table tr[data-alarm="${key}"]`).count(), 0);
  await screenshot(page, 'fleetops-alarms');
  assert.deepEqual(page.errors, []);

  const viewerPage = await openOps(fleet.viewer, '?tab=alarms');
  await viewerPage.locator('#alarms-table tbody tr').first().waitFor();
  assert.ok((await viewerPage.locator('#alarms-table tbody tr').count()) > 0, 'the viewer sees the open alarms');
  assert.equal(await viewerPage.getByRole('button', { name: /Acknowledge/ }).count(), 0);
  const [other] = await open();
  await assert.rejects(
    viewerApi(`/alarms/${other.device_id}/${encodeURIComponent(other.alarm_time)}/${encodeURIComponent(other.alarm_type)}/ack`, { method: 'POST', body: {} }),
    /: 403 /,
  );
  assert.deepEqual(viewerPage.errors, []);
});

/** The trip keys the table shows, in order. */
const shownTrips = (page) => page.$$eval('#trips-table tbody tr', (rows) => rows.map((r) => r.dataset.trip));
const tripKey = (t) => `${t.device_id}/${t.start_time}`;

test('the trips table shows the API\'s trips of the range, sorts by a column, and exports them as CSV', async () => {
  const f = `from=${encodeURIComponent(dayStart(range.from, tz))}&to=${encodeURIComponent(dayStart(addDays(range.to, 1), tz))}`;
  const firstPage = async () => (await viewerApi(`/trips?${f}&limit=50`)).items;
  await until('trips', async () => (await firstPage()).length > 0);
  const page = await openOps(fleet.viewer, '?tab=trips');
  let shown;
  let api;
  for (let attempt = 0; attempt < 6; attempt++) {
    const before = (await firstPage()).map(tripKey);
    if (attempt) await page.reload();
    await page.locator('#trips-table tbody tr').first().waitFor();
    shown = await shownTrips(page);
    const after = (await firstPage()).map(tripKey);
    api = JSON.stringify(shown) === JSON.stringify(after) ? after : before;
    if (JSON.stringify(shown) === JSON.stringify(api)) break;
  }
  assert.deepEqual(shown, api, 'newest first, as the API pages them');

  // sorting reorders the page by the column
  const items = await firstPage();
  const byKey = new Map(items.map((t) => [tripKey(t), t]));
  await page.getByRole('button', { name: /^Distance/ }).click();
  const asc = await shownTrips(page);
  const distances = asc.map((k) => byKey.get(k)?.distance_m).filter((d) => d !== undefined);
  assert.ok(distances.length > 1);
  assert.deepEqual(distances, [...distances].sort((a, b) => a - b), 'ascending by distance');
  assert.equal(await page.locator('th[aria-sort]').getAttribute('aria-sort'), 'ascending');
  await page.getByRole('button', { name: /^Distance/ }).click();
  const desc = (await shownTrips(page)).map((k) => byKey.get(k)?.distance_m).filter((d) => d !== undefined);
  assert.deepEqual(desc, [...desc].sort((a, b) => b - a), 'descending by distance');

  // Next shows the API's second page (its cursor), Previous the first again
  const secondPage = async () => {
    const first = await viewerApi(`/trips?${f}&limit=50`);
    return (await viewerApi(`/trips?${f}&limit=50&after=${first.next_after}`)).items.map(tripKey);
  };
  const secondBefore = await secondPage();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.locator('#trips-status', { hasText: /^Trips 51–/ }).waitFor();
  const page2 = await shownTrips(page);
  const secondAfter = await secondPage();
  assert.ok(
    [secondBefore, secondAfter].some((p) => JSON.stringify(p) === JSON.stringify(page2)),
    'page 2 is the API\'s page 2',
  );
  await page.getByRole('button', { name: 'Previous' }).click();
  await page.locator('#trips-status', { hasText: /^Trips 1–/ }).waitFor();

  const all = async () => {
    const out = [];
    let after;
    do {
      const p = await viewerApi(`/trips?${f}&limit=1000${after ? `&after=${after}` : ''}`);
      out.push(...p.items.map(tripKey));
      after = p.next_after;
    } while (after);
    return out;
  };
  // CSV: every trip of the range, as the API lists them
  const before = new Set(await all());
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
  assert.equal(download.suggestedFilename(), 'trips.csv');
  const lines = readFileSync(await download.path(), 'utf8').trim().split(/\r\n/);
  const header = lines[0].split(',');
  assert.equal(header[0], 'device_id');
  const startCol = header.indexOf('start_time');
  const csv = new Set(lines.slice(1).map((l) => csvFields(l)).map((c) => `${c[0]}/${new Date(c[startCol]).toISOString()}`));
  const afterSet = new Set(await all());
  const norm = (s) => new Set([...s].map((k) => { const [d, t] = k.split('/'); return `${d}/${new Date(t).toISOString()}`; }));
  // the fleet is live: the CSV holds every trip listed before it and nothing not listed after it
  for (const k of norm(before)) assert.ok(csv.has(k), `CSV lacks trip ${k}`);
  const later = norm(afterSet);
  for (const k of csv) assert.ok(later.has(k), `CSV has trip ${k} the API does not list`);
  assert.deepEqual(page.errors, []);
});

/** Fields of a CSV line (quoted fields may hold commas and doubled quotes). */
function csvFields(line) {
  const out = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { out.push(field); field = ''; }
    else field += c;
  }
  out.push(field);
  return out;
}

test('the charts hold the API\'s days and vehicle-days, today at a glance lists the API\'s vehicles, and the freshness banner reflects ingest health', async () => {
  const glance = async () => [
    (await viewerApi('/fleet/idle')).map((v) => String(v.device_id)).sort(),
    (await viewerApi('/kpis/not-moved-today')).items.map((v) => String(v.device_id)).sort(),
  ];
  const glanceBefore = await glance();
  const page = await openOps(fleet.viewer);
  await page.locator('#chart-trend[data-points]').waitFor({ state: 'attached' });
  const trend = await viewerApi(`/kpis/utilisation-trend?from=${range.from}&to=${range.to}`);
  assert.ok(trend.length > 0);
  assert.equal(await page.locator('#chart-trend').getAttribute('data-points'), String(trend.length));
  const daily = (await viewerApi(`/kpis/daily?from=${range.from}&to=${range.to}&limit=5000`)).items;
  const heat = Number(await page.locator('#chart-heatmap').getAttribute('data-points'));
  // new vehicle-days may appear while the page loads, never disappear
  assert.ok(heat > 0 && heat <= daily.length, `heatmap ${heat} cells, API ${daily.length} vehicle-days`);
  const summary = (await viewerApi(`/alarms/summary?from=${range.from}&to=${range.to}`)).items;
  assert.ok(summary.length > 0, 'the simulator raised alarms');
  assert.equal(await page.locator('#chart-alarms').getAttribute('data-points'), String(summary.length));
  for (const id of ['chart-trend', 'chart-heatmap', 'chart-idle', 'chart-alarms']) {
    const box = await page.locator(`#${id}`).boundingBox();
    assert.ok(box && box.width > 100 && box.height > 100, `${id} is drawn`);
  }
  // the canvases hold pixels, not a blank chart
  const painted = await page.$eval('#chart-trend', (c) => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v) => v !== 0));
  assert.ok(painted);

  const shownGlance = [
    (await page.$$eval('#glance-idle li', (li) => li.map((l) => l.dataset.device))).sort(),
    (await page.$$eval('#glance-not-moved li', (li) => li.map((l) => l.dataset.device))).sort(),
  ];
  const glanceAfter = await glance();
  assert.ok(
    [glanceBefore, glanceAfter].some((g) => JSON.stringify(g) === JSON.stringify(shownGlance)),
    `today at a glance shows ${JSON.stringify(shownGlance)}, the API ${JSON.stringify(glanceBefore)} / ${JSON.stringify(glanceAfter)}`,
  );
  assert.equal(await page.locator('#not-moved-count').textContent(), `(${shownGlance[1].length})`);

  const jobs = (await viewerApi('/health/ingest')).items;
  const bad = jobs.filter((j) => j.status === 'failing' || j.status === 'stale');
  const banner = page.locator('#freshness');
  await page.locator('#freshness[data-level]').waitFor();
  assert.equal(await banner.getAttribute('data-level'), bad.length ? 'bad' : 'good');
  const text = await banner.textContent();
  for (const j of bad) assert.match(text, new RegExp(j.job.replace('.', '\\.')));
  if (!bad.length) assert.match(text, new RegExp(`${jobs.length} ingest jobs running normally`));
  assert.deepEqual(page.errors, []);
});

test('a failing ingest job turns the banner red and names the job and its error', async () => {
  // the demo's simulator never fails: the device sync (polled every 6 h, so nothing overwrites
  // it during the test) is given three failed runs in a row, as a refused account would leave
  fleet.sql(`insert into fleet.ingestion_log (job, started_at, finished_at, status, error)
             select 'poll.devices', now() - make_interval(secs => i), now() - make_interval(secs => i),
                    'failed', 'vendor answered 503'
             from generate_series(1, 3) i`);
  const job = (await viewerApi('/health/ingest')).items.find((j) => j.job === 'poll.devices');
  assert.equal(job.status, 'failing', JSON.stringify(job));
  const page = await newPage(browser);
  await login(page, fleet.base, fleet.viewer, '/ops');
  await page.locator('#freshness[data-level="bad"]').waitFor();
  const text = await page.locator('#freshness').textContent();
  assert.match(text, new RegExp(`poll\\.devices is failing \\(${job.consecutive_failures} failed runs in a row: vendor answered 503\\)`));
  const colour = await page.$eval('#freshness', (b) => getComputedStyle(b).backgroundColor);
  assert.equal(colour, 'rgb(254, 226, 226)');
  assert.deepEqual(page.errors, []);
});

test('on a 375 px wide phone every section fits the width: no horizontal page scroll', async () => {
  const page = await openOps(fleet.viewer, '', { width: 375, height: 740 });
  await page.locator('#tiles [data-kpi]').first().waitFor();
  await page.locator('#chart-heatmap[data-points]').waitFor({ state: 'attached' });
  await screenshot(page, 'fleetops-phone');
  for (const tab of ['Overview', 'Trips', 'Alarms', 'Drivers', 'Vehicles', 'Health']) {
    await page.getByRole('tab', { name: tab }).click();
    await page.waitForFunction(() => !document.querySelector('[role="tabpanel"]:not([hidden])[aria-busy]'));
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(scroll <= client, `${tab}: page is ${scroll} px wide in a ${client} px viewport`);
  }
  // the tiles stack in two columns, the panels in one
  const tiles = await page.$$eval('#tiles [data-kpi]', (t) => new Set(t.map((e) => Math.round(e.getBoundingClientRect().x))).size);
  assert.ok(tiles <= 2);
  assert.deepEqual(page.errors, []);
});

test('sections are reachable with the keyboard and each loads without console errors', async () => {
  const page = await openOps(fleet.admin);
  await page.locator('#tiles [data-kpi]').first().waitFor();
  await page.getByRole('tab', { name: 'Overview' }).focus();
  for (const [name, tab] of [['Trips', 'trips'], ['Alarms', 'alarms'], ['Drivers', 'drivers'], ['Vehicles', 'vehicles'], ['Health', 'health']]) {
    await page.keyboard.press('ArrowRight');
    const selected = page.getByRole('tab', { name, selected: true });
    await selected.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.textContent), name);
    await page.waitForURL((u) => u.searchParams.get('tab') === tab);
    const panel = page.locator(`#panel-${tab}`);
    assert.equal(await panel.isVisible(), true);
    await page.waitForFunction((id) => !document.getElementById(id).hasAttribute('aria-busy'), `panel-${tab}`);
  }
  await page.keyboard.press('Home');
  await page.getByRole('tab', { name: 'Overview', selected: true }).waitFor();
  // the tables got their rows
  await page.getByRole('tab', { name: 'Drivers' }).click();
  assert.ok((await page.locator('#leaderboard tbody tr').count()) > 0);
  await page.getByRole('tab', { name: 'Vehicles' }).click();
  const reconciliation = (await viewerApi(`/kpis/reconciliation?from=${range.from}&to=${range.to}&limit=1000`)).items;
  const shownDays = await page.locator('#reconciliation tbody tr').count();
  // vehicle-days only get added while the fleet runs
  assert.ok(shownDays > 0 && shownDays <= reconciliation.length, `${shownDays} rows shown, API ${reconciliation.length}`);
  const groups = (await viewerApi(`/kpis/rollup?from=${range.from}&to=${range.to}&group_by=cost_centre`)).items;
  assert.equal(await page.locator('#per-cost-centre tbody tr').count(), groups.length);
  await page.getByRole('tab', { name: 'Health' }).click();
  assert.equal(await page.locator('#ingest-health tbody tr').count(), (await viewerApi('/health/ingest')).items.length);
  assert.deepEqual(page.errors, []);
});

test('a range without data shows empty states, not errors', async () => {
  const page = await openOps(fleet.viewer, '?tab=trips&from=2020-01-01&to=2020-01-07');
  await page.getByText('No trips in this range.').waitFor();
  await page.getByRole('tab', { name: 'Overview' }).click();
  await page.locator('#tiles [data-kpi="distance"]').waitFor();
  // the API has no rollup row for days before any data: the tiles say so instead of showing zeros
  assert.deepEqual((await viewerApi('/kpis/rollup?from=2020-01-01&to=2020-01-07')).items, []);
  await page.getByText('No KPI data in this range.').waitFor();
  assert.deepEqual(new Set(await page.locator('#tiles .value').allTextContents()), new Set(['—']));
  await page.getByRole('tab', { name: 'Drivers' }).click();
  await page.getByText('No driving in this range.').waitFor();
  assert.equal(await page.locator('#app-error:not([hidden])').count(), 0);
  assert.deepEqual(page.errors, []);
});

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

test('every section, loaded, has no serious accessibility violations (axe-core, WCAG 2.1 AA)', async () => {
  for (const viewport of [undefined, { width: 375, height: 740 }]) {
    const page = await openOps(fleet.operator, '', viewport);
    await page.evaluate(axeSource);
    for (const tab of ['Overview', 'Trips', 'Alarms', 'Drivers', 'Vehicles', 'Health']) {
      await page.getByRole('tab', { name: tab }).click();
      await page.waitForFunction(() => !document.querySelector('[role="tabpanel"]:not([hidden])[aria-busy]'));
      await page.locator('[role="tabpanel"]:not([hidden]) .loading').waitFor({ state: 'detached' });
      const result = await page.evaluate(() =>
        window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
      );
      const serious = result.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
      assert.deepEqual(serious, [], `${tab} at ${viewport?.width ?? 1366} px`);
    }
    assert.deepEqual(page.errors, []);
  }
});

test('a failing request is shown to the user, not swallowed', async () => {
  const page = await newPage(browser);
  // a cost centre holding a NUL character is refused by the API with a 400 problem: a real
  // failed request, with the server's own explanation
  await login(page, fleet.base, fleet.viewer, '/ops?tab=drivers&cost_centre=%00');
  const alert = page.getByRole('alert');
  await alert.filter({ hasText: /Could not load drivers: \S/ }).waitFor();
  // the failed requests are the only errors the console may show
  assert.ok(page.errors.length > 0 && page.errors.every((e) => e.includes('400')), page.errors.join('\n'));
});

/** Which way each tile's KPI improves. */
const betterWhen = { distance: 'up', driving: 'up', idle_ratio: 'down', utilisation: 'up', overspeed: 'down', score: 'up', active: 'up', not_moved: 'down', idle_cost: 'down' };

test('each tile compares with the previous period: arrow and percentage from the API, coloured by whether the change is good', async () => {
  const day = range.to;
  const yesterday = addDays(day, -1);
  const rows = async () => [
    (await viewerApi(`/kpis/rollup?from=${day}&to=${day}`)).items[0],
    (await viewerApi(`/kpis/rollup?from=${yesterday}&to=${yesterday}`)).items[0],
  ];
  const page = await openOps(fleet.viewer, `?from=${day}&to=${day}`);
  let wrong;
  let compared;
  for (let attempt = 0; attempt < 6; attempt++) {
    const before = await rows();
    if (attempt) await page.reload();
    await page.locator('#tiles [data-kpi]').first().waitFor();
    const shown = await page.$$eval('#tiles [data-kpi]', (tiles) =>
      Object.fromEntries(tiles.map((t) => [t.dataset.kpi, { text: t.querySelector('.delta').textContent.replace(/\s+/g, ' ').trim(), good: Boolean(t.querySelector('.delta .good')), bad: Boolean(t.querySelector('.delta .bad')) }])),
    );
    const after = await rows();
    const check = ([now, prev]) => {
      const out = [];
      let n = 0;
      for (const [kpi, expect] of Object.entries(expectedTiles)) {
        if (!betterWhen[kpi]) continue;
        const [v] = expect(now);
        const [p] = expect(prev);
        const got = shown[kpi];
        if (v === null || p === null || p === 0) {
          if (!/no figure for the previous 1 day/.test(got.text)) out.push(`${kpi}: ${got.text}`);
          continue;
        }
        const change = ((v - p) / Math.abs(p)) * 100;
        if (Math.abs(change) < 0.05) continue;
        n++;
        const up = change > 0;
        const good = betterWhen[kpi] === (up ? 'up' : 'down');
        const text = `${up ? '▲' : '▼'} ${up ? 'up' : 'down'} ${Math.abs(change).toFixed(1)} % (${good ? 'better' : 'worse'}) vs previous 1 day`;
        if (got.text !== text || got.good !== good || got.bad !== !good) out.push(`${kpi}: shows ${JSON.stringify(got)}, expected "${text}" ${good ? 'good' : 'bad'}`);
      }
      return [out, n];
    };
    const [a, na] = check(before);
    const [b, nb] = check(after);
    [wrong, compared] = a.length <= b.length ? [a, na] : [b, nb];
    if (!wrong.length) break;
  }
  assert.deepEqual(wrong, []);
  assert.ok(compared > 0, 'some KPI changed from yesterday to today');
  // the colours: green for better, red for worse
  const colours = await page.$$eval('#tiles .delta .good, #tiles .delta .bad', (els) => [...new Set(els.map((e) => `${e.className}:${getComputedStyle(e).color}`))]);
  for (const c of colours) assert.ok(c === 'good:rgb(21, 128, 61)' || c === 'bad:rgb(185, 28, 28)', c);
  assert.deepEqual(page.errors, []);
});

// last: it changes the registry (three vehicles join a cost centre) for the rest of the run
test('choosing a cost centre shows the rollup of its vehicles in the tiles and only them in the tables', async () => {
  const adminApi = await fleet.api(fleet.admin);
  const members = [1, 2, 3];
  for (const id of members) await adminApi(`/devices/${id}`, { method: 'PATCH', body: { cost_centre: 'North' } });
  const rollupOf = async () => (await viewerApi(`/kpis/rollup?from=${range.from}&to=${range.to}&cost_centre=North`)).items[0];
  // the vehicles' KPIs are re-derived after the change
  await until('the cost centre\'s KPIs', async () => (await rollupOf())?.distance_m > 0);

  const page = await openOps(fleet.viewer);
  await readTiles(page);
  await page.getByLabel('Cost centre', { exact: true }).selectOption('North');
  await page.waitForURL((u) => u.searchParams.get('cost_centre') === 'North');
  let wrong;
  for (let attempt = 0; attempt < 6; attempt++) {
    const before = await rollupOf();
    if (attempt) await page.reload();
    await page.waitForFunction(() => !document.querySelector('#panel-overview[aria-busy]'));
    const shown = await readTiles(page);
    const after = await rollupOf();
    const a = tileMismatches(shown, before);
    const b = tileMismatches(shown, after);
    wrong = a.length <= b.length ? a : b;
    if (!wrong.length) break;
  }
  assert.deepEqual(wrong, []);
  assert.equal((await rollupOf()).vehicles, members.length);

  await page.getByRole('tab', { name: 'Vehicles' }).click();
  await page.waitForFunction(() => !document.querySelector('#panel-vehicles[aria-busy]'));
  const vehicles = await page.$$eval('#per-vehicle tbody tr', (rows) => rows.map((r) => r.querySelector('[data-col="cost_centre"]').textContent));
  assert.ok(vehicles.length > 0 && vehicles.length <= members.length);
  assert.deepEqual(new Set(vehicles), new Set(['North']));
  assert.deepEqual(await page.locator('#per-cost-centre tbody th').allTextContents(), ['North']);
  await page.getByRole('tab', { name: 'Drivers' }).click();
  await page.waitForFunction(() => !document.querySelector('#panel-drivers[aria-busy]'));
  const board = await viewerApi(`/kpis/leaderboard?from=${range.from}&to=${range.to}&cost_centre=North`);
  assert.equal(await page.locator('#leaderboard tbody tr').count(), board.length);
  assert.deepEqual(page.errors, []);
});
