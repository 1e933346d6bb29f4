// A device whose storage is full: the app still opens and works, says what it could not
// keep and what to do, and whatever was saved before survives a reload.
//
// Each case sets the origin's quota with the DevTools protocol before the app first
// loads, in a fresh browser. (Lowered later, Chromium's enforcement is unreliable: once a
// large value such as a trained profile is stored it stops refusing writes, and refused
// writes leave traces it counts.) The app's offline copy (about 55 MB) never fits.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openApp, screenshot } from './harness.mjs';

const server = await serveDist();
const browsers = [];
after(async () => {
  await Promise.all(browsers.map((b) => b.close()));
  await server.close();
});

/// A first visit on a device with `quota` bytes of storage for the app.
async function firstVisitWithQuota(quota) {
  const browser = await launch();
  browsers.push(browser);
  const app = await openApp(browser, 'about:blank');
  const cdp = await app.page.context().newCDPSession(app.page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(server.url).origin, quotaSize: quota });
  await app.page.goto(`${server.url}#/all`);
  return app;
}

const errors = (page) => page.getByTestId('error');
const FULL = /storage for DamageLens is full\. Nothing was changed; everything saved before is intact\. Delete products or photos you no longer need, then try again\./;

test('600 kB: the demo photos are refused by name, the offline copy too, and the app says what to do', async () => {
  const { page, problems } = await firstVisitWithQuota(600_000);
  await page.locator('[data-testid=offline][data-state=unavailable]').waitFor({ timeout: 300_000 });
  await errors(page).filter({ hasText: 'could not store its files for offline use' }).waitFor();
  await errors(page).filter({ hasText: 'and 37 more photos: the browser would not store it' }).waitFor({ timeout: 120_000 });
  const message = await errors(page).innerText();
  assert.match(message, /Saving cell\d+\.png, cell\d+\.png, cell\d+\.png and 37 more photos: /);
  assert.match(message, FULL);
  assert.match(message, /It works while online; free some space \(or delete products you no longer need\) and reload\./);
  assert.equal(await page.getByTestId('offline').innerText(), 'Online only');
  // The engine still runs: scoring needs no storage.
  await page.getByTestId('backend').filter({ hasText: 'CPU' }).waitFor({ timeout: 120_000 });
  await screenshot(page, '40-storage-full-photos');
  assert.deepEqual(problems, []);
});

test('3 MB: the demo photos fit, its trained profile does not; after a reload the photos are intact', async () => {
  const { page, problems } = await firstVisitWithQuota(3_000_000);
  await page.getByTestId('photo-count').filter({ hasText: '40 good photo(s) saved' }).waitFor({ timeout: 120_000 });
  await errors(page).filter({ hasText: 'Saving Solar cell, mono (demo): the browser would not store it' }).waitFor({ timeout: 300_000 });
  assert.match(await errors(page).innerText(), FULL);
  await screenshot(page, '41-storage-full-profile');

  await page.reload();
  await page.getByTestId('current-product').filter({ hasText: 'Solar cell, mono (demo)' }).waitFor({ timeout: 60_000 });
  await page.getByTestId('photo-count').filter({ hasText: '40 good photo(s) saved' }).waitFor({ timeout: 60_000 });
  assert.match(await page.getByTestId('current-product').innerText(), /not trained yet/);
  assert.deepEqual(problems, []);
});
