// The library as a person uses it: rename, reload (saved work survives), export a profile
// and import it on "another device" (a fresh browser profile) with the same scores,
// batch inspection sorted by score, a bad profile refused, delete, a reload mid-training.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDist, launch, openApp, screenshot, elpvMono, ROOT, upload } from './harness.mjs';

let server, browser, app;
const cracked = elpvMono('1.0');
const good = elpvMono('0.0');
const CRACKED = cracked.find((f) => f.endsWith('cell0013.png'));
const asUpload = (f) => upload(f);
// The native CLI, built by `cargo test` in README's test command.
const CLI = join(ROOT, 'target', 'debug', 'damagelens');
const cliScore = (profile, photo) => JSON.parse(execFileSync(CLI, ['inspect', '--profile', profile, photo], { cwd: ROOT }).toString().split('\n')[0]).score;
const closeTo = (a, b, what) => assert.ok(Math.abs(a - b) <= 1e-4 * Math.abs(b), `${what}: ${a} vs ${b}`);

before(async () => {
  server = await serveDist();
  browser = await launch();
  app = await openApp(browser, server.url);
  await app.page.getByTestId('profile-ready').filter({ hasText: '(demo)' }).waitFor({ timeout: 300_000 });
});
after(async () => {
  await browser?.close();
  await server?.close();
});

async function rawScore(page, file) {
  const verdict = page.getByTestId('verdict');
  const prev = (await verdict.count()) ? await verdict.getAttribute('data-raw-score') : null;
  await page.getByTestId('inspect-files').setInputFiles(file);
  await page.waitForFunction((p) => {
    const v = document.querySelector('[data-testid=verdict]');
    return v && v.getAttribute('data-raw-score') !== p;
  }, prev, { timeout: 120_000 });
  return verdict.getAttribute('data-raw-score');
}

let exported, scoreHere;

test('a renamed product is exported under its new name', async () => {
  const { page } = app;
  scoreHere = await rawScore(page, asUpload(CRACKED));
  await page.getByRole('button', { name: 'Rename' }).click();
  await page.getByTestId('rename-input').fill('Line 7 <img src=x onerror=alert(1)>');
  await page.getByRole('button', { name: 'Save name' }).click();
  await page.getByTestId('current-product').filter({ hasText: 'Line 7 <img src=x onerror=alert(1)>' }).waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('profile-export').click()]);
  exported = join(mkdtempSync(join(tmpdir(), 'dl-')), download.suggestedFilename());
  await download.saveAs(exported);
  assert.match(download.suggestedFilename(), /^Line 7 _img src_x onerror_alert\(1\)_\.dlprofile$/);
  assert.ok(readFileSync(exported).length > 1000);
});

test('a reload keeps the library and the current product, without training again', async () => {
  const { page } = app;
  await page.reload();
  await page.getByTestId('current-product').filter({ hasText: 'Line 7' }).waitFor({ timeout: 60_000 });
  await page.getByTestId('inspect-files').and(page.locator(':enabled')).waitFor({ timeout: 120_000 });
  assert.equal(await page.getByTestId('train-progress').count(), 0);
  assert.equal(await rawScore(page, asUpload(CRACKED)), scoreHere);
});

/// "Another device": a fresh browser profile imports `profile` (product `name`), then `check` runs on it.
async function onAnotherDevice(profile, name, check) {
  const other = await launch();
  try {
    const fresh = await openApp(other, server.url);
    await fresh.page.getByTestId('backend').filter({ hasText: 'CPU' }).waitFor({ timeout: 120_000 });
    await fresh.page.getByTestId('profile-import').setInputFiles(profile);
    await fresh.page.getByTestId('current-product').filter({ hasText: name }).waitFor({ timeout: 60_000 });
    await check(fresh);
  } finally {
    await other.close();
  }
}

test('the exported profile scores the same on another device', async () => {
  await onAnotherDevice(exported, 'Line 7 <img src=x onerror=alert(1)>', async (fresh) => {
    // The profile came without photos: the demo's must not be shown as this product's.
    await fresh.page.getByTestId('photo-count').filter({ hasText: /^0 good photo/ }).waitFor({ timeout: 30_000 });
    assert.equal(await rawScore(fresh.page, asUpload(CRACKED)), scoreHere);
    await screenshot(fresh.page, '10-imported');
    assert.deepEqual(fresh.problems, []);
  });
});

test('a profile scores the same in the browser and the command line, both ways', { skip: !existsSync(CLI) && 'build the CLI first: cargo build --bin damagelens' }, async () => {
  // Trained in the browser, scored by the CLI.
  closeTo(cliScore(exported, CRACKED), Number(scoreHere), 'browser profile, CLI score');
  // Trained by the CLI, imported and scored in a browser.
  const dir = mkdtempSync(join(tmpdir(), 'dl-cli-'));
  const trained = join(dir, 'cli.dlprofile');
  execFileSync(CLI, ['train', ...good.slice(0, 20), '--name', 'Trained by the CLI', '--out', trained], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  await onAnotherDevice(trained, 'Trained by the CLI', async (fresh) => {
    closeTo(Number(await rawScore(fresh.page, asUpload(CRACKED))), cliScore(trained, CRACKED), 'CLI profile, browser score');
  });
});

test('many photos at once: a grid sorted by score, the worst first', async () => {
  const { page } = app;
  await page.getByTestId('inspect-files').setInputFiles([asUpload(good[45]), asUpload(CRACKED), asUpload(good[46])]);
  const tiles = page.getByTestId('results-grid').locator('button.tile');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=results-grid] .result:not(.pending)').length === 3, null, { timeout: 120_000 });
  assert.equal(await tiles.count(), 3);
  assert.match(await tiles.first().getAttribute('aria-label'), /^cell0013\.png: DAMAGED/);
  await screenshot(page, '11-batch');
});

test('a file that is not a profile is refused by name, and the current product stays', async () => {
  const { page } = app;
  const bad = join(mkdtempSync(join(tmpdir(), 'dl-')), 'broken.dlprofile');
  writeFileSync(bad, 'not a profile at all');
  await page.getByTestId('profile-import').setInputFiles(bad);
  await page.getByTestId('error').filter({ hasText: 'broken.dlprofile' }).waitFor();
  await page.getByRole('button', { name: 'Dismiss' }).click();
  assert.match(await page.getByTestId('current-product').innerText(), /Line 7/);
  assert.ok(Number(await rawScore(page, asUpload(CRACKED))) > 0);
});

test('delete removes the product after confirmation; names stay text', async () => {
  const { page } = app;
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('button', { name: 'Delete for good' }).click();
  await page.getByTestId('current-product').waitFor({ state: 'detached' });
  assert.equal(await page.locator('img[src=x]').count(), 0);
  await page.reload();
  await page.getByTestId('backend').filter({ hasText: 'CPU' }).waitFor({ timeout: 120_000 });
  await page.getByTestId('product-new').waitFor();
  // Gone from the library (the inspection log keeps its verdicts, by name, as text).
  assert.doesNotMatch(await page.locator('section[aria-labelledby=library-title]').innerText(), /Line 7/);
  assert.match(await page.getByTestId('log-panel').innerText(), /Line 7 <img src=x/);
  assert.equal(await page.locator('img[src=x]').count(), 0);
  await screenshot(page, '12-deleted');
  assert.deepEqual(app.problems, []);
});

test('a reload in the middle of training loses no photo, and training can start again', async () => {
  const { page } = app;
  await page.getByTestId('product-new').click();
  await page.getByTestId('profile-name').fill('Reload mid-training');
  await page.getByTestId('train-files').setInputFiles(good.slice(0, 12).map(asUpload));
  await page.getByTestId('photo-count').filter({ hasText: '12 good photo(s) saved' }).waitFor();
  await page.getByTestId('train-start').click();
  await page.getByTestId('train-progress').waitFor();
  await page.reload();
  await page.getByTestId('current-product').filter({ hasText: 'Reload mid-training' }).waitFor({ timeout: 60_000 });
  await page.getByTestId('photo-count').filter({ hasText: '12 good photo(s) saved' }).waitFor({ timeout: 60_000 });
  await page.getByTestId('train-start').and(page.locator(':enabled')).waitFor({ timeout: 120_000 });
  await page.getByTestId('train-start').click();
  await page.getByTestId('profile-ready').filter({ hasText: 'Reload mid-training' }).waitFor({ timeout: 300_000 });
  assert.match(await page.getByTestId('profile-ready').innerText(), /12 good photos/);
});
