// The station on a tablet (768x1024): the app opens on its Inspect page, where the photo
// and camera, the verdict with its heatmap and the decisions all fit the screen, with the
// decisions at the thumb; the other pages are a tap (or Tab and Enter) away, and a link
// to one opens it again after a reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { join } from 'node:path';
import { serveDist, launch, openApp, screenshot, SHOTS } from './harness.mjs';

const TABLET = { width: 768, height: 1024 };
let server, browser, app;

before(async () => {
  server = await serveDist();
  browser = await launch();
  // No page named: the station's own page.
  app = await openApp(browser, `${server.url}#`, TABLET);
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/// The element lies wholly on the first screen.
async function onScreen(locator, what) {
  const box = await locator.boundingBox();
  assert.ok(box && box.y >= 0 && box.y + box.height <= TABLET.height && box.x + box.width <= TABLET.width,
    `${what} is on the tablet's screen: ${JSON.stringify(box)}`);
  return box;
}

test('a tablet opens on the station: photo, camera, verdict and heatmap, decisions at the thumb', async () => {
  const { page } = app;
  assert.equal(await page.getByTestId('page-inspect').getAttribute('aria-current'), 'page');
  // The workbench's panels are on their own pages.
  assert.equal(await page.getByTestId('product-new').isVisible(), false);
  assert.equal(await page.getByTestId('log-panel').isVisible(), false);
  await page.locator('[data-testid=inspect-files]:enabled').waitFor({ timeout: 300_000 });
  await onScreen(page.getByTestId('inspect-files'), 'the photo picker');
  await onScreen(page.getByTestId('camera-start'), 'the camera button');
  await onScreen(page.getByTestId('product-auto'), 'the Auto switch');
  assert.match(await page.getByTestId('inspect-product').innerText(), /Solar cell, mono \(demo\)/);

  await page.getByRole('button', { name: /^Inspect cell0013\.png \(cracked\)$/ }).click();
  const verdict = page.getByTestId('verdict');
  await verdict.waitFor({ timeout: 120_000 });
  assert.equal(await verdict.getAttribute('data-verdict'), 'damaged');
  await page.waitForFunction(() => document.querySelector('[data-testid=heatmap]')?.dataset.drawn, null, { timeout: 60_000 });
  const heatmap = await page.getByTestId('heatmap').boundingBox();
  assert.ok(heatmap.width > 0.8 * (TABLET.width - 80), `the heatmap is large: ${JSON.stringify(heatmap)}`);
  // However far down the verdict is, the decisions stay at the bottom of the screen.
  await verdict.scrollIntoViewIfNeeded();
  await onScreen(verdict, 'the verdict');
  const aside = await onScreen(page.getByTestId('decide-aside'), 'Set aside');
  await onScreen(page.getByTestId('mark-good'), 'Mark as good');
  assert.ok(aside.y > TABLET.height / 2, `Set aside is in the lower half, at the thumb: ${aside.y}`);
  // What the clerk sees: the screen itself, not the whole page.
  await page.screenshot({ path: join(SHOTS, '80-station-tablet.png') });
  await page.getByTestId('decide-aside').click();
  await page.getByTestId('decision').filter({ hasText: 'set aside' }).waitFor();
  assert.deepEqual(app.problems, []);
});

test('the other pages by tap or keyboard, and a link to one survives a reload', async () => {
  const { page } = app;
  await page.getByTestId('page-log').click();
  await page.getByTestId('log-panel').waitFor();
  assert.equal(await page.getByTestId('inspect-files').isVisible(), false);
  assert.equal(await page.locator('[data-testid=log-entry][data-verdict=damaged]').count(), 1);
  await page.reload();
  await page.getByTestId('log-panel').waitFor({ timeout: 60_000 });
  assert.equal(new URL(page.url()).hash, '#/log');
  assert.equal(await page.getByTestId('page-log').getAttribute('aria-current'), 'page');

  await page.getByTestId('page-products').focus();
  await page.keyboard.press('Enter');
  await page.getByTestId('product-new').waitFor();
  assert.equal(await page.getByTestId('log-panel').isVisible(), false);
  await screenshot(page, '82-station-products');
  await page.goBack();
  await page.getByTestId('log-panel').waitFor();
  assert.deepEqual(app.problems, []);
});
