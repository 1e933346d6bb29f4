// A new user on a first visit does not wait for the demo: while the demo product is still
// training in the engine, they make their own product, add photos and press Train. Their
// product must stay current and get trained; the demo gets its own profile too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usingApp, screenshot, elpvMono, savedProfiles, upload } from './harness.mjs';

let app;
const good = elpvMono('0.0');
const asUpload = (f) => upload(f);

usingApp((opened) => { app = opened; });

test('a product made while the demo trains stays current and is trained', async () => {
  const { page } = app;
  // At once, before the demo is ready.
  await page.getByTestId('product-new').click();
  await page.getByTestId('profile-name').fill('My boxes');
  await page.getByTestId('train-files').setInputFiles(good.slice(100, 130).map(asUpload));
  await page.getByTestId('photo-count').filter({ hasText: '30 good photo(s) saved' }).waitFor({ timeout: 60_000 });
  await page.getByTestId('current-product').filter({ hasText: 'My boxes' }).waitFor();
  await page.getByTestId('train-start').and(page.locator(':enabled')).waitFor({ timeout: 120_000 });
  // The demo is saved and on its way to the engine, but not trained yet.
  await page.getByRole('button', { name: /^Use Solar cell/ }).waitFor({ timeout: 60_000 });
  assert.equal(await savedProfiles(page), 0, 'the demo must still be training when Train is pressed');
  await page.getByTestId('train-start').click();
  await page.getByTestId('train-progress').waitFor();

  // Both trainings end; theirs is the current product, trained on their 30 photos.
  await page.getByTestId('profile-ready').filter({ hasText: 'My boxes' }).waitFor({ timeout: 300_000 });
  assert.match(await page.getByTestId('profile-ready').innerText(), /30 good photos/);
  for (let i = 0; i < 60 && (await savedProfiles(page)) < 2; i++) await page.waitForTimeout(500);
  assert.equal(await savedProfiles(page), 2, 'the demo and their product each have a profile');
  assert.match(await page.getByTestId('current-product').innerText(), /My boxes/);
  const demo = page.getByTestId('product-list').locator('li', { hasText: 'Solar cell' });
  assert.match(await demo.innerText(), /40 good photos/);
  assert.doesNotMatch(await demo.innerText(), /not trained/);

  // It inspects with their product, and the demo is one click away, still trained.
  await page.getByTestId('inspect-files').setInputFiles(asUpload(good[140]));
  await page.getByTestId('verdict').waitFor({ timeout: 120_000 });
  await screenshot(page, '40-first-visit-own-product');
  await page.getByRole('button', { name: /^Use Solar cell/ }).click();
  await page.getByTestId('profile-ready').filter({ hasText: 'Solar cell' }).waitFor({ timeout: 120_000 });
  await page.getByTestId('demo-samples').waitFor({ timeout: 120_000 });
  assert.deepEqual(app.problems, []);
});
