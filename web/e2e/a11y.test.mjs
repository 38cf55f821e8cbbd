// Accessibility of both apps and the login page, checked by axe-core (WCAG 2.1 A and AA rules:
// labels, names, contrast, landmarks, ARIA use) on a desktop and on a 375 px wide phone, once the
// apps show live data. Any serious or critical violation fails the test with its description.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { launchBrowser, login, newPage, startFleetd } from './harness.mjs';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

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

/** Serious and critical axe violations of the page as it is now, one line each. */
async function violations(page) {
  // evaluated through the debugging protocol: the pages' CSP rightly refuses inline scripts
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}

for (const viewport of [
  { name: 'desktop', width: 1366, height: 850 },
  { name: 'phone', width: 375, height: 740 },
]) {
  test(`the login page has no serious accessibility violations (${viewport.name})`, async () => {
    const page = await newPage(browser, viewport);
    await page.goto(`${fleet.base}/login`);
    assert.deepEqual(await violations(page), []);
  });

  for (const app of ['/now', '/ops']) {
    test(`${app} has no serious accessibility violations once loaded (${viewport.name})`, async () => {
      const page = await newPage(browser, viewport);
      await login(page, fleet.base, fleet.operator, app);
      await page.getByTestId('who').waitFor();
      await page.waitForLoadState('networkidle');
      assert.deepEqual(await violations(page), []);
      assert.deepEqual(page.errors, []);
    });
  }
}
