// Signing in and out, the redirect of a signed-out visitor, wrong passwords, and the size of
// each app's first load.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, login, newPage, screenshot, startFleetd, transferredBytes } from './harness.mjs';

let fleet;
let browser;

before(async () => {
  fleet = await startFleetd();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await fleet?.stop();
});

test('a signed-out visitor is sent to the login page and back to the app after signing in', async () => {
  const page = await newPage(browser);
  await login(page, fleet.base, fleet.viewer, '/ops');
  assert.equal(new URL(page.url()).pathname, '/ops');
  await page.getByTestId('who').waitFor();
  assert.match(await page.getByTestId('who').textContent(), /viewer/);
  assert.deepEqual(page.errors, []);
});

test('after signing in, a crafted next never leads off-site', async () => {
  const own = new URL(fleet.base).origin;
  const crafted = ['/\\evil.example', '//evil.example', 'https://evil.example', 'javascript:alert(1)', '/%5Cevil.example'];
  for (const next of crafted) {
    const page = await newPage(browser);
    await page.goto(`${fleet.base}/login?next=${encodeURIComponent(next)}`);
    await page.getByLabel('Username').fill(fleet.viewer.username);
    await page.getByLabel('Password').fill(fleet.viewer.password);
    // where the browser goes, whatever answers there (`/%5Cevil.example` is fleetd's 404)
    const navigation = page.waitForRequest(
      (r) => r.isNavigationRequest() && !new URL(r.url()).pathname.startsWith('/login'),
    );
    await page.getByRole('button', { name: 'Sign in' }).click();
    const landed = new URL((await navigation).url());
    assert.equal(landed.origin, own, `${next} led to ${landed.href}`);
    assert.ok(!landed.pathname.startsWith('//'), `${next} led to ${landed.href}`);
  }
});

test('a wrong password is refused with a message and no session', async () => {
  const page = await newPage(browser);
  await page.goto(`${fleet.base}/login`);
  await screenshot(page, 'login');
  await page.getByLabel('Username').fill('viewer');
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong username or password' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/login');
  // the failed request is the only error the console may show
  assert.ok(page.errors.every((e) => e.includes('401')), page.errors.join('\n'));
});

test('logging out ends the session: the apps send the visitor back to the login page', async () => {
  const page = await newPage(browser);
  await login(page, fleet.base, fleet.operator, '/now');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/login/);
  await page.goto(`${fleet.base}/ops`);
  await page.waitForURL(/\/login\?next=%2Fops/);
});

for (const app of ['/now', '/ops']) {
  test(`the first load of ${app} transfers under 1 MB`, async () => {
    const page = await newPage(browser);
    await login(page, fleet.base, fleet.admin, '/login');
    // a fresh context: nothing cached, as on a first visit
    const cookies = await page.context().cookies();
    const fresh = await newPage(browser);
    await fresh.context().addCookies(cookies);
    await fresh.goto(`${fleet.base}${app}`, { waitUntil: 'networkidle' });
    const bytes = await transferredBytes(fresh);
    assert.ok(bytes > 10_000, `${app}: ${bytes} bytes is too little to be the app`);
    assert.ok(bytes < 1_000_000, `${app}: first load transferred ${bytes} bytes`);
    console.log(`${app}: first load ${bytes} bytes transferred`);
  });
}
