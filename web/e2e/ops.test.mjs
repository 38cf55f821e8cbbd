// FleetOps against a real fleetd demo: KPI tiles equal to the API's rollup, acknowledging
// alarms by role, the trips table (paging order, sorting, CSV), charts and the freshness
// banner, the phone layout, keyboard navigation and the URL-kept view.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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

test('a chosen range and city are kept in the URL; the tiles then show that city\'s rollup', async () => {
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
    const rowOf = async () =>
      (await viewerApi(`/kpis/rollup?from=${from}&to=${range.to}&group_by=city`)).items.find((r) => r.group_key === city);
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
