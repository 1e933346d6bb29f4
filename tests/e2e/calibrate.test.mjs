// Calibrating the demo product as a person would: add cracked cells, give one a mask
// file and paint another's with the brush, score them, look at the charts, try the
// threshold methods and the sensitivity slider, use a threshold, and see that inspection
// and a reload both follow it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { usingApp, screenshot, elpvMono, upload } from './harness.mjs';

let app;
const CRACKED = elpvMono('1.0').slice(0, 6);
const GOOD = elpvMono('0.0');
const file = (path) => upload(path);

usingApp((opened) => { app = opened; });

/// A PNG drawn in the page: `w` x `h`, black, with a white rectangle [x, y, rw, rh].
async function maskPng(name, w, h, rect) {
  const b64 = await app.page.evaluate(async ({ w, h, rect }) => {
    const canvas = document.createElement('canvas');
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#000'; ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#fff'; ctx.fillRect(...rect);
    const bytes = new Uint8Array(await (await new Promise((ok) => canvas.toBlob(ok, 'image/png'))).arrayBuffer());
    let s = ''; bytes.forEach((v) => { s += String.fromCharCode(v); });
    return btoa(s);
  }, { w, h, rect });
  return { name, mimeType: 'image/png', buffer: Buffer.from(b64, 'base64') };
}

const thresholdValue = async () => Number(await app.page.getByTestId('threshold-value').getAttribute('data-threshold'));
const item = (name) => app.page.locator(`[data-testid=calib-item][data-name="${name}"]`);

async function pick(method) {
  const before = await app.page.getByTestId('threshold-value').getAttribute('data-threshold');
  await app.page.getByTestId('threshold-method').selectOption(method);
  return before;
}

test('the demo product is ready', async () => {
  await app.page.getByTestId('profile-ready').filter({ hasText: '(demo)' }).waitFor({ timeout: 600_000 });
  await app.page.locator('[data-testid=calib-run]:not([disabled])').waitFor({ timeout: 120_000 });
});

test('damaged photos are added, and masks that do not fit are refused by name', async () => {
  const { page } = app;
  await page.getByTestId('calib-files').setInputFiles(CRACKED.map(file));
  await page.getByTestId('calib-item').nth(CRACKED.length - 1).waitFor();
  assert.equal(await page.getByTestId('calib-item').count(), CRACKED.length);

  const [first, second] = CRACKED.map((p) => basename(p, '.png'));
  await page.getByTestId('calib-masks').setInputFiles([
    await maskPng(`${first}_mask.png`, 120, 80, [10, 10, 20, 20]),
    { name: `${second}.png`, mimeType: 'image/png', buffer: Buffer.from('not a picture at all') },
    await maskPng('nobody_mask.png', 300, 300, [0, 0, 10, 10]),
  ]);
  const error = page.getByTestId('error');
  await error.filter({ hasText: 'nobody_mask.png' }).waitFor();
  const text = await error.innerText();
  assert.match(text, new RegExp(`${first}_mask\\.png: the mask is 120x80 but its photo ${first}\\.png is 300x300; give a mask of the photo's size`));
  assert.match(text, new RegExp(`${second}\\.png.*not a PNG or JPEG`));
  assert.match(text, /nobody_mask\.png: no damaged photo is named like this mask/);
  await screenshot(page, 'calib-00-bad-masks');
  await page.getByRole('button', { name: 'Dismiss' }).click();

  // A mask of the right size is taken.
  await page.getByTestId('calib-masks').setInputFiles([await maskPng(`${first}_mask.png`, 300, 300, [60, 40, 180, 220])]);
  await item(`${first}.png`).and(page.locator('[data-mask=true]')).waitFor();
  await item(`${first}.png`).getByTestId('calib-category').selectOption('structural');
});

test('a mask is painted with the brush beside a good photo; undo takes back a stroke', async () => {
  const { page } = app;
  const name = basename(CRACKED[1]);
  await item(name).getByTestId('calib-paint').click();
  const canvas = page.locator('[data-testid=brush-canvas][data-ready=true]');
  await canvas.waitFor();
  await page.getByTestId('reference-photo').waitFor();
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  const stroke = async (points) => {
    await page.mouse.move(box.x + points[0][0] * box.width, box.y + points[0][1] * box.height);
    await page.mouse.down();
    for (const [x, y] of points.slice(1)) await page.mouse.move(box.x + x * box.width, box.y + y * box.height, { steps: 8 });
    await page.mouse.up();
  };
  await stroke([[0.2, 0.2], [0.5, 0.5], [0.8, 0.8]]);
  await stroke([[0.1, 0.9], [0.3, 0.9]]);
  await page.locator('[data-testid=brush-canvas][data-strokes="2"]').waitFor();
  await page.getByTestId('brush-undo').click();
  await page.locator('[data-testid=brush-canvas][data-strokes="1"]').waitFor();
  // The painted stroke shows in red on the photo.
  const red = await page.evaluate(() => {
    const c = document.querySelector('[data-testid=brush-canvas]');
    const d = c.getContext('2d').getImageData(Math.round(c.width / 2), Math.round(c.height / 2), 1, 1).data;
    return d[0] - Math.max(d[1], d[2]);
  });
  assert.ok(red > 60, `the middle of the stroke is not red (${red})`);
  await screenshot(page, 'calib-01-brush');
  await page.getByTestId('brush-save').click();
  await item(name).and(page.locator('[data-mask=true]')).waitFor();
  await item(name).getByTestId('calib-category').selectOption('surface');
});

test('scoring draws the charts and IoU is the default with masks', async () => {
  const { page } = app;
  await page.getByTestId('calib-run').click();
  await page.getByTestId('calib-results').waitFor({ timeout: 600_000 });
  assert.equal(await page.getByTestId('threshold-method').inputValue(), 'max-iou');
  assert.match(await page.getByTestId('threshold-why').innerText(), /Maximum IoU .* on 2 damaged photos with masks/);
  for (const id of ['chart-iou', 'chart-roc', 'chart-pr', 'chart-hist']) {
    const ok = await page.getByTestId(id).evaluate((img) => img.decode().then(() => img.naturalWidth > 0, () => false));
    assert.ok(ok, `${id} did not render`);
  }
  assert.match(await page.getByTestId('flagged-share').innerText(), /Expected share of good items flagged: \d+\.\d% \(\d+ of 8 held-out good photos\)/);
  await page.getByTestId('chart-iou').scrollIntoViewIfNeeded();
  await screenshot(page, 'calib-02-iou');
  // A tablet held upright, in the dark theme.
  await page.setViewportSize({ width: 768, height: 1024 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await screenshot(page, 'calib-02b-tablet-dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1280, height: 800 });
});

test('each method gives a sensible threshold, and the slider moves it live', async () => {
  const { page } = app;
  const trained = Number((await page.getByTestId('profile-threshold').innerText()).match(/score ([\d.]+)/)[1]);
  let before = await pick('normal');
  await page.waitForFunction((b) => document.querySelector('[data-testid=threshold-value]').dataset.threshold !== b, before);
  // Mean + 2 sigma of the held-out photos' scores under the model without them: what training chose.
  const normal = await thresholdValue();
  assert.ok(Math.abs(normal - trained) < 0.05 + 1e-3 * trained, `normal statistics ${normal} vs training's ${trained}`);

  before = await pick('fp-budget');
  await page.locator('#fp-budget').fill('0');
  await page.locator('#fp-budget').dispatchEvent('change');
  await page.getByTestId('flagged-share').filter({ hasText: 'flagged: 0.0%' }).waitFor();
  assert.equal(await page.getByTestId('flagged-warning').count(), 0);

  await pick('youden');
  await page.getByTestId('threshold-why').filter({ hasText: "Youden's J" }).waitFor();
  const youden = await thresholdValue();
  assert.ok(Number.isFinite(youden) && youden > 0);

  // Lower on the 0..1 scale flags more: the threshold drops and the share cannot fall.
  const share = async () => Number((await page.getByTestId('flagged-share').innerText()).match(/flagged: ([\d.]+)%/)[1]);
  const [t0, s0] = [youden, await share()];
  await page.getByTestId('sensitivity').fill('0.2');
  await page.waitForFunction((t) => Number(document.querySelector('[data-testid=threshold-value]').dataset.threshold) < t, t0);
  assert.ok((await share()) >= s0);
  // Past 5% of good items flagged, the panel says so.
  assert.equal(await page.getByTestId('flagged-warning').count(), (await share()) > 5 ? 1 : 0);
  assert.match(await page.getByTestId('threshold-why').innerText(), /sensitivity slider to 0\.20/);
  await screenshot(page, 'calib-03-youden-slider');

  await pick('max-iou');
  await page.getByTestId('threshold-why').filter({ hasText: 'Maximum IoU' }).waitFor();
  assert.equal(await page.getByTestId('sensitivity').inputValue(), '0.5');
});

test('the chosen threshold is used for inspection and kept over a reload', async () => {
  const { page } = app;
  // A good cell, then a threshold set by hand just below its score: it must turn DAMAGED.
  const good = file(GOOD[50]);
  await page.getByTestId('inspect-files').setInputFiles(good);
  const verdict = page.getByTestId('verdict');
  await verdict.waitFor({ timeout: 120_000 });
  // Not DAMAGED; it may be CHECK, which starts 1.5 sigma above the good photos' mean.
  assert.match(await verdict.getAttribute('data-verdict'), /^(ok|check)$/);
  const raw = Number(await verdict.getAttribute('data-raw-score'));

  await pick('manual');
  const manual = (raw * 0.98).toFixed(3);
  await page.locator('#manual-threshold').fill(manual);
  await page.locator('#manual-threshold').dispatchEvent('change');
  await page.getByTestId('threshold-why').filter({ hasText: 'Set by hand' }).waitFor();
  assert.ok(Math.abs((await thresholdValue()) - Number(manual)) < 1e-3);
  // The CHECK band comes from the same photos: below the threshold, or none, and said so.
  const band = page.getByTestId('check-band');
  const from = await band.getAttribute('data-check-from');
  if (from) {
    assert.ok(Number(from) <= Number(manual), `CHECK from ${from} above the threshold ${manual}`);
    assert.match(await band.innerText(), /CHECK \(a person looks\)/);
  } else {
    assert.match(await band.innerText(), /no CHECK band/);
  }
  await page.getByTestId('calib-apply').click();
  await page.getByTestId('calib-saved').filter({ hasText: `In use now: ${Number(manual).toFixed(3)}` }).waitFor({ timeout: 60_000 });
  await page.locator('[data-testid=inspect-files]:not([disabled])').waitFor();

  await page.getByTestId('inspect-files').setInputFiles(good);
  await page.locator('[data-testid=verdict][data-verdict=damaged]').waitFor({ timeout: 120_000 });
  // The verdict names the raw threshold it used (one decimal).
  const used = Number((await verdict.innerText()).match(/raw [\d.]+ \/ ([\d.]+)/)[1]);
  assert.ok(Math.abs(used - Number(manual)) <= 0.051, `inspection used ${used}, not ${manual}`);
  await screenshot(page, 'calib-04-inspect-after');

  await page.reload();
  await page.getByTestId('profile-ready').filter({ hasText: '(demo)' }).waitFor({ timeout: 120_000 });
  const kept = Number((await page.getByTestId('profile-threshold').innerText()).match(/score ([\d.]+)/)[1]);
  assert.ok(Math.abs(kept - Number(manual)) <= 0.051, `after a reload the threshold is ${kept}, not ${manual}`);
  assert.match(await page.getByTestId('profile-threshold-method').innerText(), /Set by hand/);
  await page.getByTestId('calib-item').nth(CRACKED.length - 1).waitFor();
  assert.equal(await page.locator('[data-testid=calib-item][data-mask=true]').count(), 2);
  assert.equal(await item(basename(CRACKED[1])).getByTestId('calib-category').inputValue(), 'surface');
  await page.locator('[data-testid=inspect-files]:not([disabled])').waitFor({ timeout: 120_000 });
  await page.getByTestId('inspect-files').setInputFiles(good);
  await page.locator('[data-testid=verdict][data-verdict=damaged]').waitFor({ timeout: 120_000 });
  await screenshot(page, 'calib-05-after-reload');
  assert.deepEqual(app.problems, []);
});

test('the damaged photos taught the product a damage head, shown beside the verdict', async () => {
  const { page } = app;
  await page.getByTestId('profile-damage-head').filter({ hasText: `from ${CRACKED.length} damaged photos` }).waitFor({ timeout: 60_000 });
  const sureOf = async (path) => {
    await page.locator('[data-testid=inspect-files]:not([disabled])').waitFor({ timeout: 120_000 });
    await page.getByTestId('inspect-files').setInputFiles(file(path));
    const head = page.locator(`[data-testid=verdict][data-file="${basename(path)}"] [data-testid=damage-head]`);
    await head.waitFor({ timeout: 120_000 });
    return Number(await head.getAttribute('data-damage'));
  };
  // Unseen cells: the cracked one looks like the damage it learnt, the good one less so.
  const good = await sureOf(GOOD[60]);
  const cracked = await sureOf(elpvMono('1.0')[20]);
  console.log(`damage head: cracked ${cracked.toFixed(3)}, good ${good.toFixed(3)}`);
  assert.ok(cracked > good, `cracked ${cracked} vs good ${good}`);
  assert.match(await page.getByTestId('damage-head').innerText(), /Damage head .* sure there is damage like them/);
  await page.getByTestId('heatmap').scrollIntoViewIfNeeded();
  await screenshot(page, 'calib-06-damage-head');
  assert.deepEqual(app.problems, []);
});
