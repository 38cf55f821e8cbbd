// FleetNow against a real fleetd demo: every vehicle on the map and in the list, markers moving
// with the stream, search and filters agreeing with the API, the dock with the vehicle's day and
// a trip replay, and the phone layout.
//
// The simulator drives its fleet on the fleet's local working hours (Africa/Nairobi). When no
// vehicle is moving (its night), the tests move one themselves through the same push receiver
// the simulator uses (/push/pushgps with the push token), so they check the same path at any
// hour.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { launchBrowser, login, newPage, screenshot, sleep, startFleetd } from './harness.mjs';

const PUSH_TOKEN = 'e2e-push-token';
const STATES = ['moving', 'idling', 'parked', 'offline'];

let fleet;
let browser;
let api;

before(async () => {
  fleet = await startFleetd({ FLEETD_PUSH_TOKEN: PUSH_TOKEN });
  browser = await launchBrowser();
  api = await fleet.api(fleet.viewer);
});

after(async () => {
  await browser?.close();
  await fleet?.stop();
});

/** What the last failed check of `until` saw, for its failure message. */
let seen = '';

/** Polls `fn` until it returns a truthy value; fails with `what` (and `seen`) after `ms`. */
async function until(what, fn, ms = 20_000) {
  const deadline = Date.now() + ms;
  seen = '';
  for (;;) {
    const last = await fn();
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last seen: ${seen}`);
    await sleep(250);
  }
}

/** Whether `a` and `b` are equal as JSON; remembers both for a failure message. */
function same(a, b) {
  seen = `${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The vendor's time format (UTC). */
function vendorTime(date) {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

/** Pushes fixes as the vendor's Data Push does: `{imei, time, lat, lon, speed, course}`. */
async function pushFixes(fixes) {
  const list = fixes.map((f) => ({
    deviceImei: f.imei,
    gpsTime: vendorTime(f.time),
    gateTime: vendorTime(f.time),
    satelliteNum: 9,
    lat: f.lat,
    lng: f.lon,
    gpsMode: 0,
    gpsSpeed: f.speed,
    direction: f.course,
    acc: 1,
    postType: 1,
    altitude: 1650,
  }));
  const res = await fetch(`${fleet.base}/push/pushgps`, {
    method: 'POST',
    body: new URLSearchParams({ token: PUSH_TOKEN, data_list: JSON.stringify(list) }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** Opens FleetNow signed in and waits until it shows the fleet. */
async function openNow(viewport) {
  const page = await newPage(browser, viewport);
  await login(page, fleet.base, fleet.viewer, '/');
  await page.waitForFunction(() => window.fleetNow && window.fleetNow.store.vehicles.size > 0);
  return page;
}

/** What the count tiles show. */
function tiles(page) {
  return page.evaluate((states) => {
    const out = {};
    for (const s of [...states, 'total']) out[s] = Number(document.querySelector(`[data-count="${s}"]`).textContent);
    return out;
  }, STATES);
}

function summaryOf(live) {
  const { moving, idling, parked, offline, total } = live.summary;
  return { moving, idling, parked, offline, total };
}

/** Ids of the list items shown. */
function listedIds(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('.vehicle-list li:not([hidden]) button[data-id]')].map((b) => Number(b.dataset.id)).sort((a, b) => a - b),
  );
}

const ids = (live) => live.features.map((f) => f.id).sort((a, b) => a - b);

test('FleetNow shows every vehicle: list, markers (clustered included) and count tiles equal /fleet/live', async () => {
  const page = await openNow();
  await until('the markers and the list to equal /fleet/live', async () => {
    const live = await api('/fleet/live');
    const shown = await page.evaluate(() => ({
      markers: window.fleetNow.markerIds(),
      clustered: window.fleetNow.clusterLayerCount(),
      listed: Number(document.querySelector('[data-testid="list-count"]').dataset.shown),
    }));
    return (
      live.features.length > 0 &&
      JSON.stringify(shown.markers) === JSON.stringify(ids(live)) &&
      shown.clustered === live.features.length &&
      shown.listed === live.features.length
    );
  });
  // statuses change as the fleet reports: compare with an answer from the same moment
  await until('the count tiles to equal the summary', async () => {
    const live = await api('/fleet/live');
    return same(await tiles(page), summaryOf(live));
  });
  // "in alarm": vehicles with unacknowledged alarms of the last 24 h
  await until('the in-alarm tile to equal the open alarms', async () => {
    const live = await api('/fleet/live');
    const from = new Date(Date.now() - 24 * 3600_000).toISOString();
    const open = await api(`/alarms?acknowledged=false&limit=1000&from=${encodeURIComponent(from)}`);
    const known = new Set(live.features.map((f) => f.id));
    const want = live.summary.in_alarm ?? new Set(open.items.map((a) => a.device_id).filter((id) => known.has(id))).size;
    return same(Number(await page.getByTestId('tile-alarm').locator('.value').textContent()), want);
  });
  const live = await api('/fleet/live');
  assert.ok(live.features.length >= 20, `the demo fleet has ${live.features.length} vehicles with a fix`);
  assert.equal(await page.locator('.leaflet-marker-icon').count() > 0, true, 'something is drawn on the map');
  await screenshot(page, 'fleetnow-map');
  assert.deepEqual(page.errors, []);
});

test('reloading FleetNow revalidates /fleet/live with the entity tag it holds', async () => {
  const page = await openNow();
  const liveRequests = [];
  page.on('requestfinished', async (req) => {
    if (new URL(req.url()).pathname !== '/api/v1/fleet/live') return;
    const resp = await req.response();
    liveRequests.push({ sent: await req.allHeaders(), etag: resp ? (await resp.allHeaders()).etag : undefined });
  });
  await page.reload();
  await page.waitForFunction(() => window.fleetNow && window.fleetNow.store.vehicles.size > 0);
  await until('the reloaded page to have asked for /fleet/live', async () => liveRequests.length > 0);
  await page.reload();
  await page.waitForFunction(() => window.fleetNow && window.fleetNow.store.vehicles.size > 0);
  await until('the second reload to have asked for /fleet/live', async () => liveRequests.length > 1);
  // the browser keeps the map (private, no-cache) and asks whether it changed; an unchanged
  // fleet is a 304 without a body, a changed one a new map with a new tag
  const [first, second] = liveRequests;
  assert.match(first.etag ?? '', /^W\/"live-[0-9a-f]{16}"$/, 'the answer carries its tag');
  assert.equal(second.sent['if-none-match'], first.etag, 'the reload names the copy it holds');
  const headers = await page.evaluate(async () => {
    const r = await fetch('/api/v1/fleet/live', { headers: { 'if-none-match': '*' } });
    return { status: r.status, cache: r.headers.get('cache-control') };
  });
  assert.deepEqual(headers, { status: 304, cache: 'private, no-cache' });
  assert.deepEqual(page.errors, []);
});

test('a pushed position moves its marker without a reload', async () => {
  const page = await openNow();
  await page.evaluate(() => {
    window.__noReload = 1;
  });
  const live = await api('/fleet/live');
  const moving = live.features.find((f) => f.properties.status === 'moving');
  const vehicle = moving || live.features[0];
  const id = vehicle.id;
  const before = await page.evaluate((i) => window.fleetNow.markerLatLng(i), id);
  assert.ok(before, 'the vehicle has a marker');
  if (!moving) {
    // the simulated fleet is parked for the night: move one vehicle as the simulator would
    const [lon, lat] = vehicle.geometry.coordinates;
    await pushFixes([{ imei: vehicle.properties.imei, time: new Date(), lat: lat + 0.01, lon: lon + 0.01, speed: 35, course: 45 }]);
  }
  await until(
    'the marker to move',
    async () => {
      const now = await page.evaluate((i) => window.fleetNow.markerLatLng(i), id);
      return now[0] !== before[0] || now[1] !== before[1];
    },
    60_000,
  );
  // the marker sits where the API says the vehicle is (the fleet may move on meanwhile)
  await until('the marker to equal the API position', async () => {
    const [feature] = (await api('/fleet/live')).features.filter((f) => f.id === id);
    const now = await page.evaluate((i) => window.fleetNow.markerLatLng(i), id);
    return Math.abs(now[0] - feature.geometry.coordinates[1]) < 1e-9 && Math.abs(now[1] - feature.geometry.coordinates[0]) < 1e-9;
  });
  assert.equal(await page.evaluate(() => window.__noReload), 1, 'the page did not reload');
  assert.deepEqual(page.errors, []);
});

test('search, city and state filters narrow the list and the map as /fleet/live does', async () => {
  const page = await openNow();
  const live = await api('/fleet/live');

  // search by plate: only vehicles whose name or plate holds it
  const plate = live.features.find((f) => f.properties.plate).properties.plate;
  await page.getByLabel('Search').fill(plate);
  const want = live.features
    .filter((f) => [f.properties.plate, f.properties.name].some((s) => s && s.toLowerCase().includes(plate.toLowerCase())))
    .map((f) => f.id)
    .sort((a, b) => a - b);
  await until('the search to narrow the list', async () => same(await listedIds(page), want));
  assert.ok(want.length >= 1 && want.length < live.features.length);
  assert.deepEqual(await page.evaluate(() => window.fleetNow.markerIds()), want);

  // search by driver name
  const driver = live.features.find((f) => f.properties.driver_name).properties.driver_name;
  await page.getByLabel('Search').fill(driver);
  const byDriver = live.features.filter((f) => f.properties.driver_name === driver).map((f) => f.id).sort((a, b) => a - b);
  await until('the driver search', async () => same(await listedIds(page), byDriver));
  await page.getByLabel('Search').fill('');
  await until('the list to show everything again', async () => (await listedIds(page)).length === live.features.length);

  // a city swatch: the counts and the items of /fleet/live?city=
  const cities = [...new Set(live.features.map((f) => f.properties.city))].filter(Boolean);
  const city = cities.sort((a, b) => live.features.filter((f) => f.properties.city === b).length - live.features.filter((f) => f.properties.city === a).length)[0];
  const cityButton = page.getByRole('group', { name: /Cities/ }).getByRole('button', { name: new RegExp(`^${city}`) });
  await cityButton.click();
  assert.equal(await cityButton.getAttribute('aria-pressed'), 'true');
  await until(`the ${city} filter to match /fleet/live?city=${city}`, async () => {
    const inCity = await api(`/fleet/live?city=${encodeURIComponent(city)}`);
    return (
      same(await listedIds(page), ids(inCity)) &&
      JSON.stringify(await page.evaluate(() => window.fleetNow.markerIds())) === JSON.stringify(ids(inCity)) &&
      same(await tiles(page), summaryOf(inCity))
    );
  });

  // and a state on top: the items of /fleet/live?city=&status=
  const inCity = await api(`/fleet/live?city=${encodeURIComponent(city)}`);
  const state = STATES.find((s) => inCity.summary[s] > 0);
  await page.getByTestId(`tile-${state}`).click();
  assert.equal(await page.getByTestId(`tile-${state}`).getAttribute('aria-pressed'), 'true');
  await until(`the ${state} filter to match /fleet/live?city=${city}&status=${state}`, async () => {
    const both = await api(`/fleet/live?city=${encodeURIComponent(city)}&status=${state}`);
    return (
      same(await listedIds(page), ids(both)) &&
      JSON.stringify(await page.evaluate(() => window.fleetNow.markerIds())) === JSON.stringify(ids(both))
    );
  });
  assert.deepEqual(page.errors, []);
});

/** A vehicle with a replayable trip today: the simulator's, or one driven through the push receiver. */
async function vehicleWithTripToday() {
  const live = await api('/fleet/live');
  const day = await api(`/devices/${live.features[0].id}/day`);
  const q = `from=${encodeURIComponent(day.from)}&to=${encodeURIComponent(day.to)}&limit=100`;
  const replayable = (t) => t.point_count >= 5 && t.duration_s >= 60;
  let trip = (await api(`/trips?${q}`)).items.find(replayable);
  if (!trip) {
    // nobody drove yet today (the simulated night): drive one vehicle north for ten minutes
    const vehicle = live.features.find((f) => f.properties.status !== 'moving') || live.features[0];
    const [lon, lat] = vehicle.geometry.coordinates;
    const start = Date.now() - 10 * 60_000;
    await pushFixes(
      Array.from({ length: 40 }, (_, i) => ({
        imei: vehicle.properties.imei,
        time: new Date(start + i * 15_000),
        lat: lat + 0.0015 * (i + 1),
        lon,
        speed: 40,
        course: 0,
      })),
    );
    trip = await until(
      'the trip builder to build the pushed trip',
      async () => (await api(`/trips?device_id=${vehicle.id}&${q}`)).items.find(replayable),
      60_000,
    );
  }
  return trip;
}

test('selecting a vehicle opens the dock with its day, and a trip replays, pauses and stops', async () => {
  const trip = await vehicleWithTripToday();
  const page = await openNow();
  await page.locator(`.vehicle-list button[data-id="${trip.device_id}"]`).click();
  const dock = page.getByRole('complementary', { name: trip.name });
  await dock.waitFor();
  const day = await api(`/devices/${trip.device_id}/day`);
  await until('the day totals', async () => (await page.getByTestId('day-trips').textContent()) === String(day.totals.trips));
  assert.equal(await dock.locator('.trip-card').count(), day.trips.length);
  const index = day.trips.findIndex((t) => t.start_time === trip.start_time);
  assert.ok(index >= 0, 'the trip is among the day trips');
  const csv = await dock.getByRole('link', { name: /CSV/ }).getAttribute('href');
  const csvRes = await page.evaluate(async (href) => (await fetch(href)).text(), csv);
  assert.equal(csvRes.trim().split('\n').length, day.trips.length + 1, 'the CSV holds a header and the day trips');

  await dock.getByRole('button', { name: `Replay trip ${index + 1}` }).click();
  const play = dock.getByRole('button', { name: 'Play', exact: true });
  await play.waitFor();
  await dock.getByRole('button', { name: '64×' }).click();
  const start = await page.evaluate(() => window.fleetNow.replayLatLng());
  assert.ok(start, 'the replay marker is on the map');
  await play.click();
  await sleep(1500);
  const moved = await page.evaluate(() => window.fleetNow.replayLatLng());
  assert.notDeepEqual(moved, start, 'the replay marker moves while playing');
  const progress = Number(await dock.getByLabel(/Position/).inputValue());
  assert.ok(progress > 0, `the progress indicator advances (${progress})`);
  await dock.getByRole('button', { name: 'Pause', exact: true }).click();
  const paused = await page.evaluate(() => window.fleetNow.replayLatLng());
  await sleep(1000);
  assert.deepEqual(await page.evaluate(() => window.fleetNow.replayLatLng()), paused, 'pause stops the marker');
  await screenshot(page, 'fleetnow-dock');

  await page.keyboard.press('Escape');
  await dock.waitFor({ state: 'hidden' });
  assert.deepEqual(page.errors, []);
});

test('on a 375 px wide phone the page does not scroll sideways and map and list are reachable', async () => {
  const page = await openNow({ width: 375, height: 740 });
  await page.waitForFunction(() => document.querySelectorAll('.vehicle-list button').length > 0);
  assert.ok(
    await page.evaluate(() => document.documentElement.scrollWidth <= 375),
    `page width ${await page.evaluate(() => document.documentElement.scrollWidth)}`,
  );
  const map = await page.getByTestId('map').boundingBox();
  assert.ok(map.width >= 360 && map.height >= 250, `the map is ${map.width}×${map.height}`);
  await screenshot(page, 'fleetnow-phone');
  const first = page.locator('.vehicle-list button').first();
  await first.scrollIntoViewIfNeeded();
  await first.click();
  await page.locator('#dock:not([hidden]) h2').waitFor();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 375), 'no sideways scroll with the dock open');
  assert.deepEqual(page.errors, []);
});

test('map tiles that keep failing are given up for a plain background with a notice', async () => {
  // a tile server that fails every request
  const tileServer = createServer((req, res) => res.writeHead(503).end());
  await new Promise((ok) => tileServer.listen(0, '127.0.0.1', ok));
  const tileUrl = `http://127.0.0.1:${tileServer.address().port}/{z}/{x}/{y}.png`;
  const broken = await startFleetd({ FLEETD_MAP_TILE_URL: tileUrl });
  try {
    const page = await newPage(browser);
    await login(page, broken.base, broken.viewer, '/');
    await page.getByText('Map tiles unavailable — plain background').waitFor();
    assert.equal(await page.locator('.leaflet-tile-pane img').count(), 0, 'the tile layer is gone');
    // once given up, moving the map asks for no more tiles: no new errors pile up
    const errors = page.errors.length;
    await page.getByRole('button', { name: 'Zoom in' }).click();
    await sleep(1500);
    assert.equal(page.errors.length, errors, page.errors.join('\n'));
    // the only errors are the refused tiles
    assert.ok(page.errors.length > 0 && page.errors.every((e) => e.includes('503')), page.errors.join('\n'));
    // the fleet is still shown
    assert.ok((await page.evaluate(() => window.fleetNow.markerCount())) > 0);
  } finally {
    await broken.stop();
    tileServer.close();
  }
});

test('keyboard: a list item opens the dock with Enter, Escape closes it and focus returns to the item', async () => {
  const page = await openNow();
  const first = page.locator('.vehicle-list button').first();
  await first.focus();
  await page.keyboard.press('ArrowDown');
  const second = page.locator('.vehicle-list button').nth(1);
  assert.ok(await second.evaluate((el) => el === document.activeElement), 'ArrowDown moves to the next vehicle');
  const id = Number(await second.getAttribute('data-id'));
  await page.keyboard.press('Enter');
  await page.locator('#dock:not([hidden]) h2').waitFor();
  assert.equal(await second.getAttribute('aria-current'), 'true');
  assert.ok(await page.evaluate(() => document.activeElement.id === 'dock-title'), 'the dock takes the focus');
  const name = (await api('/fleet/live')).features.find((f) => f.id === id).properties.name;
  assert.equal(await page.locator('#dock h2').textContent(), name);
  await page.keyboard.press('Escape');
  await page.locator('#dock').waitFor({ state: 'hidden' });
  assert.ok(await second.evaluate((el) => el === document.activeElement), 'focus is back on the item');
  // markers are named for assistive technology
  const titles = await page.locator('.leaflet-marker-icon.vehicle-marker').evaluateAll((els) => els.map((e) => e.title));
  assert.ok(titles.length > 0 && titles.every(Boolean), 'every vehicle marker has a title');
  assert.deepEqual(page.errors, []);
});

test('10,000 vehicles stay usable: every marker is built, searched and selected', async () => {
  // the demo's vehicles plus enough registered vehicles, each with a latest fix around Nairobi,
  // to make 10,000 on the live map; they are real rows, served by the real /fleet/live
  const before = await api('/fleet/live');
  const extra = 10_000 - before.features.length;
  fleet.sql(`
    with d as (
      insert into fleet.devices (imei, name, plate, city)
      select (990000000000000 + i)::text, 'Bulk ' || i, 'KZZ ' || lpad(i::text, 4, '0') || 'B',
             (array['Nairobi', 'Mombasa', 'Kisumu'])[1 + i % 3]
      from generate_series(1, ${extra}) i
      returning device_id, imei)
    insert into fleet.device_latest (device_id, gps_time, received_at, lat, lon, speed_kmh,
        course_deg, ignition, source, motion_state, state_since)
    select device_id, now(), now(), -1.29 + ((device_id::bigint * 7919) % 1000) / 2000.0,
           36.82 + ((device_id::bigint * 104729) % 1000) / 2000.0, 0, 0, false, 'push', 'parked', now()
    from d`);
  const live = await api('/fleet/live');
  const total = live.features.length;
  assert.ok(total >= 10_000, `${total} vehicles on the live map`);
  const page = await newPage(browser);
  await login(page, fleet.base, fleet.viewer, '/');
  const started = Date.now();
  // the cluster group takes markers in chunks, between which the page stays responsive
  await page.waitForFunction((n) => window.fleetNow?.clusterLayerCount() === n, total, { timeout: 60_000 });
  const loaded = Date.now() - started;
  assert.equal(await page.evaluate(() => window.fleetNow.markerCount()), total);
  // a search over 10,000 vehicles
  const searchStart = Date.now();
  // (by id: Playwright's label lookup itself crawls over 10,000 list items)
  await page.locator('#vehicle-search').fill(live.features[0].properties.imei);
  await until('the search to find the one vehicle', async () =>
    same(await page.evaluate(() => document.querySelector('[data-testid="list-count"]').textContent), `1 of ${total} vehicles shown`),
  );
  await page.locator('#vehicle-search').fill('');
  await until('the whole fleet to be listed again', async () =>
    same(await page.evaluate(() => document.querySelector('[data-testid="list-count"]').textContent), `${total} of ${total} vehicles shown`),
  );
  await page.locator('#vehicle-search').fill(live.features[0].properties.imei);
  await until('the search to find the one vehicle again', async () =>
    same(await page.evaluate(() => document.querySelector('[data-testid="list-count"]').textContent), `1 of ${total} vehicles shown`),
  );
  const searched = Date.now() - searchStart;
  // selecting a real vehicle
  const selectStart = Date.now();
  await page.locator(`.vehicle-list button[data-id="${live.features[0].id}"]`).click();
  await page.locator('#dock:not([hidden]) h2').waitFor({ timeout: 10_000 });
  const selected = Date.now() - selectStart;
  // timings are reported, not judged (a slow shared machine is not a failure); a page that
  // froze would miss the waits above
  console.log(`${total} vehicles: shown in ${loaded} ms, three searches in ${searched} ms, selected in ${selected} ms`);
  assert.deepEqual(page.errors, []);
});

test('a refused stream opens once a place frees, and a page whose session ends goes to the login page', async () => {
  // a fleetd of its own that allows one stream per user, so a second page is refused (429)
  const small = await startFleetd({ FLEETD_STREAMS_PER_USER: '1' });
  const live = (page) => page.getByTestId('stream-state').isHidden();
  const shown = (page) => page.getByTestId('stream-state').textContent();
  /** The status of the page's next answer from /api/v1/stream that `ok` accepts. */
  const streamAnswer = (page, ok = () => true, timeout = 30_000) =>
    page
      .waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/stream' && ok(r.status()), { timeout })
      .then((r) => r.status());
  try {
    const first = await newPage(browser);
    const firstAnswer = streamAnswer(first);
    await login(first, small.base, small.viewer, '/');
    assert.equal(await firstAnswer, 200, 'the first page gets the one place');
    const second = await newPage(browser);
    const secondAnswer = streamAnswer(second);
    await login(second, small.base, small.viewer, '/');
    assert.equal(await secondAnswer, 429, 'the second page is refused');
    const refused = await until('the second page to say so', async () => !(await live(second)) && (await shown(second)));
    assert.match(refused, /trying again in \d+ s/);
    // the first page goes away: its place frees and the second page's next try gets it
    const reopened = streamAnswer(second, (status) => status === 200, 40_000);
    await first.context().close();
    await reopened;
    await until('the second page to show it is live', () => live(second));

    // every session ends (as at a revocation): the stream ends, and the page sends its person to
    // the login page, which will bring them back here
    small.sql('delete from fleet.sessions');
    await second.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === '/', { timeout: 30_000 });
    await second.context().close();
  } finally {
    await small.stop();
  }
});
