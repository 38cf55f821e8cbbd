// What the end-to-end tests share: a real `fleetd demo` (embedded PostgreSQL, the simulator
// pushing its fleet over HTTP) on a free port, users of each role, and Debian's Chromium driven
// by playwright-core. Nothing is mocked: the browser talks to fleetd as a user's would.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** Where the tests save their screenshots (README: "Web apps"). */
export const screenshotDir = process.env.FLEETD_E2E_SCREENSHOTS || join(repo, 'target', 'e2e-screenshots');

export const password = 'e2e-password-1';

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `fleetd demo` on embedded defaults in a scratch data directory; resolves once /readyz
 * answers 200 and an operator (`ops`) and a viewer (`viewer`) exist beside the demo's admin.
 */
export async function startFleetd(extraEnv = {}) {
  const bin = process.env.FLEETD_BIN || join(repo, 'target', 'debug', 'fleetd');
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetd-e2e-'));
  // as root the embedded cluster runs as the postgres user, which must reach the directory
  chmodSync(dataDir, 0o755);
  const env = {
    ...process.env,
    FLEETD_LISTEN: `127.0.0.1:${port}`,
    FLEETD_DATA_DIR: dataDir,
    FLEETD_MAP_TILE_URL: 'none',
    FLEETD_TRIPS_INTERVAL_S: '2',
    FLEETD_KPI_INTERVAL_S: '3',
    FLEETD_LOG: 'warn',
    ...extraEnv,
  };
  delete env.DATABASE_URL; // its own embedded cluster, never a shared database
  const child = spawn(bin, ['demo'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((r) => child.once('exit', r));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`fleetd demo exited early:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`fleetd demo not ready within 60 s:\n${output}`);
    }
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.ok && /password (\S+)/.test(output)) break;
    } catch {
      /* not listening yet */
    }
    await sleep(200);
  }
  const admin = { username: 'admin', password: output.match(/password (\S+)/)[1] };
  const fleet = {
    base,
    admin,
    operator: { username: 'ops', password },
    viewer: { username: 'viewer', password },
    output: () => output,
    /** An API client signed in as `user`, for comparing what pages show with the API. */
    api: (user) => apiAs(base, user),
    /**
     * Runs SQL in fleetd's database (the embedded cluster, with psql), to set up what the demo
     * does not produce by itself, e.g. a failing ingest job; resolves to psql's output.
     */
    sql(statement) {
      const root = join(dataDir, 'postgres');
      const port = readFileSync(join(root, 'port'), 'utf8').trim();
      const secret = readFileSync(join(root, 'superuser.password'), 'utf8').trim();
      const url = `postgres://fleetd:${encodeURIComponent(secret)}@127.0.0.1:${port}/fleetd`;
      const run = spawnSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', statement], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`psql failed (${run.status}): ${run.stderr || run.error}`);
      return run.stdout.trim();
    },
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  const adminApi = await fleet.api(admin);
  await adminApi('/users', { method: 'POST', body: { username: 'ops', password, role: 'operator' } });
  await adminApi('/users', { method: 'POST', body: { username: 'viewer', password, role: 'viewer' } });
  return fleet;
}

/** An API client signed in as `user` (session cookie), for comparing pages with the API. */
async function apiAs(base, user) {
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(user),
  });
  if (!login.ok) throw new Error(`login as ${user.username}: ${login.status} ${await login.text()}`);
  const cookie = login.headers.get('set-cookie').split(';')[0];
  return async (path, { method = 'GET', body } = {}) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { cookie, 'content-type': 'application/json', accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

/** Chromium as the tests run it (no sandbox as root; no background traffic on a closed network). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A page that records console errors and uncaught exceptions; `page.errors` lists them and the
 * tests assert it stays empty.
 */
export async function newPage(browser, { width = 1366, height = 850 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.errors.push(`page error: ${e.message}`));
  return page;
}

/** Signs in through the login page and waits for the app the login sends back to. */
export async function login(page, base, user, next = '/') {
  await page.goto(`${base}${next}`);
  await page.waitForURL(/\/login/);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

/** Bytes the page's load transferred (compressed, headers included) as the browser counts them. */
export async function transferredBytes(page) {
  return page.evaluate(() =>
    [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].reduce(
      (sum, e) => sum + (e.transferSize || 0),
      0,
    ),
  );
}

export async function screenshot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: false });
}

export { sleep };
