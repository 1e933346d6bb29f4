// The first end-to-end inspection, as a person would do it: name a product, upload good
// solar cells, train, then inspect a cracked cell, a good one, and files that are not images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { usingApp, screenshot, elpvMono, upload } from './harness.mjs';

let app;
const good = elpvMono('0.0');
const cracked = elpvMono('1.0');
const TRAIN = good.slice(0, 40);
const HELD_OUT_GOOD = good[41];
const CRACKED = cracked.find((f) => f.endsWith('cell0013.png')); // a long diagonal crack

usingApp((opened) => { app = opened; });

const verdict = () => app.page.getByTestId('verdict');

async function inspect(file) {
  const before = (await verdict().count()) ? await verdict().getAttribute('data-raw-score') : null;
  await app.page.getByTestId('inspect-files').setInputFiles(file);
  await app.page.waitForFunction((prev) => {
    const v = document.querySelector('[data-testid=verdict]');
    return v && v.getAttribute('data-raw-score') !== prev;
  }, before, { timeout: 120_000 });
  return { verdict: await verdict().getAttribute('data-verdict'), score: Number(await verdict().getAttribute('data-score')) };
}

/// Where the drawn overlay differs most from the bare photo, i.e. where the heatmap shows,
/// as fractions of the width and height.
async function hotPixels(file) {
  return app.page.evaluate(async (b64) => {
    const shown = document.querySelector('[data-testid=heatmap]');
    const blob = new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/png' });
    const bare = document.createElement('canvas');
    bare.width = shown.width; bare.height = shown.height;
    bare.getContext('2d').drawImage(await createImageBitmap(blob), 0, 0, bare.width, bare.height);
    const a = shown.getContext('2d').getImageData(0, 0, shown.width, shown.height).data;
    const b = bare.getContext('2d').getImageData(0, 0, bare.width, bare.height).data;
    const diff = [];
    for (let i = 0; i < a.length; i += 4) diff.push(Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]));
    const max = Math.max(...diff);
    const hot = [];
    diff.forEach((d, i) => { if (d > 0.6 * max) hot.push([(i % shown.width) / shown.width, Math.floor(i / shown.width) / shown.height]); });
    return hot;
  }, file.buffer.toString('base64'));
}

/// A good cell with a dark crack painted from (x0, y0) to (x1, y1), fractions of the size:
/// damage whose place is known exactly.
async function withPaintedCrack(path, [x0, y0, x1, y1]) {
  const b64 = await app.page.evaluate(async ({ b64, line }) => {
    const blob = new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/png' });
    const bitmap = await createImageBitmap(blob);
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width; canvas.height = bitmap.height;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    ctx.strokeStyle = 'rgb(25,25,25)'; ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.moveTo(line[0] * canvas.width, line[1] * canvas.height);
    ctx.lineTo(line[2] * canvas.width, line[3] * canvas.height);
    ctx.stroke();
    const out = await new Promise((ok) => canvas.toBlob(ok, 'image/png'));
    const bytes = new Uint8Array(await out.arrayBuffer());
    let s = ''; bytes.forEach((v) => { s += String.fromCharCode(v); });
    return btoa(s);
  }, { b64: readFileSync(path).toString('base64'), line: [x0, y0, x1, y1] });
  return { name: `painted-${basename(path)}`, mimeType: 'image/png', buffer: Buffer.from(b64, 'base64') };
}

/// Distance from point p to the segment a-b.
function toSegment([px, py], [ax, ay, bx, by]) {
  const [dx, dy] = [bx - ax, by - ay];
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

test('the backbone loads in the worker and names its backend', async () => {
  await app.page.getByTestId('backend').filter({ hasText: 'CPU' }).waitFor({ timeout: 120_000 });
});

test('the app opens with the demo product trained, and its samples inspect with one click', async () => {
  const { page } = app;
  await page.getByTestId('profile-ready').filter({ hasText: '(demo)' }).waitFor({ timeout: 300_000 });
  await page.getByRole('button', { name: /Inspect cell0013\.png \(cracked\)/ }).click();
  await verdict().waitFor();
  assert.equal(await verdict().getAttribute('data-verdict'), 'damaged');
  await page.getByRole('button', { name: /\(good\)/ }).first().click();
  await page.waitForFunction(() => document.querySelector('[data-testid=verdict]')?.getAttribute('data-verdict') === 'ok', null, { timeout: 60_000 });
  await screenshot(page, '00-demo');
  assert.match(await page.locator('footer').innerText(), /ELPV dataset.*CC BY-NC-SA 4\.0/);
});

test('training on 40 good cells shows progress while the page stays responsive', async () => {
  const { page } = app;
  await page.getByTestId('product-new').click();
  await page.getByTestId('profile-name').fill('Mono cells, line 3');
  const notAnImage = { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('this is not a picture') };
  const photos = TRAIN.map((f) => upload(f));
  await page.getByTestId('train-files').setInputFiles([...photos, notAnImage]);
  await page.getByTestId('photo-count').filter({ hasText: '40 good photo(s) saved' }).waitFor();
  await page.getByTestId('train-start').click();
  await page.getByTestId('train-progress').waitFor();
  // The main thread answers while the worker trains.
  const started = Date.now();
  await page.evaluate(() => 1 + 1);
  assert.ok(Date.now() - started < 1000, 'the page froze during training');
  await page.getByTestId('profile-ready').filter({ hasText: 'Mono cells, line 3' }).waitFor({ timeout: 600_000 });
  assert.match(await page.getByTestId('profile-ready').innerText(), /Mono cells, line 3.*40 good photos/s);
  assert.match(await page.getByTestId('profile-threshold-method').innerText(), /held-out good photos/);
  // The bad file was skipped by name and the other 40 were used.
  assert.match(await page.getByTestId('error').innerText(), /notes\.png.*not a PNG or JPEG/);
  await page.getByRole('button', { name: 'Dismiss' }).click();
  await screenshot(page, '01-trained');
});

test('a cracked cell is DAMAGED', async () => {
  const result = await inspect(CRACKED);
  await screenshot(app.page, '02-cracked-cell');
  assert.equal(result.verdict, 'damaged', `score ${result.score}`);
  assert.ok(result.score >= 0.5);
});

test('the heatmap sits on the damage: a crack painted on a good cell', async () => {
  const line = [0.3, 0.3, 0.55, 0.62];
  const painted = await withPaintedCrack(good[43], line);
  const result = await inspect(painted);
  await screenshot(app.page, '03-painted-crack');
  assert.equal(result.verdict, 'damaged', `score ${result.score}`);
  // The heatmap alone: the outline of the region would dominate the difference image.
  await app.page.getByTestId('outline-toggle').uncheck();
  await app.page.locator('[data-testid=heatmap][data-drawn$=":false"]').waitFor();
  const hot = await hotPixels(painted);
  assert.ok(hot.length > 0);
  const near = hot.filter((p) => toSegment(p, line) < 0.08).length / hot.length;
  assert.ok(near > 0.8, `only ${(near * 100).toFixed(0)}% of the hottest overlay is within 8% of the crack`);
});

test('a held-out good cell is OK', async () => {
  const result = await inspect(upload(HELD_OUT_GOOD));
  await screenshot(app.page, '04-good-cell');
  assert.equal(result.verdict, 'ok', `score ${result.score} for ${basename(HELD_OUT_GOOD)}`);
  assert.ok(Number(await app.page.getByTestId('latency-ms').innerText()) > 0);
});

/// A copy of a photo through a canvas filter (as a shaky or dark shot would look), as PNG.
async function filtered(path, filter) {
  const base64 = await app.page.evaluate(async ({ png, filter }) => {
    const bitmap = await createImageBitmap(new Blob([Uint8Array.from(atob(png), (c) => c.charCodeAt(0))], { type: 'image/png' }));
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d');
    ctx.filter = filter;
    ctx.drawImage(bitmap, 0, 0);
    const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
    let text = '';
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text);
  }, { png: readFileSync(path).toString('base64'), filter });
  return { name: `${filter.replace(/\W+/g, '-')}-${basename(path)}`, mimeType: 'image/png', buffer: Buffer.from(base64, 'base64') };
}

test('blurred and darkened copies of a good cell get CHECK with the reason, not a score', async () => {
  const { page } = app;
  const blurred = await inspect(await filtered(HELD_OUT_GOOD, 'blur(5px)'));
  assert.equal(blurred.verdict, 'check');
  assert.match(await page.getByTestId('capture-problem').innerText(), /too blurry: hold still/);
  await screenshot(page, '05-blurred-check');
  await inspect(upload(HELD_OUT_GOOD));
  assert.equal(await page.getByTestId('capture-problem').count(), 0);
  const dark = await inspect(await filtered(HELD_OUT_GOOD, 'brightness(0.12)'));
  assert.equal(dark.verdict, 'check');
  assert.match(await page.getByTestId('capture-problem').innerText(), /too dark/);
});

test('an item of three views, one of them damaged, is DAMAGED and shows all three', async () => {
  const { page } = app;
  const as = (path, name) => upload(path, name);
  await page.getByTestId('inspect-files').setInputFiles([
    as(good[44], 'box1_front.png'),
    as(CRACKED, 'box1_back.png'),
    as(good[45], 'box1_left.png'),
    as(good[46], 'box2_front.png'),
    as(good[47], 'box2_back.png'),
  ]);
  const box = (key) => page.locator(`[data-testid=item][data-item=${key}]`);
  await page.waitForFunction(() => {
    const items = [...document.querySelectorAll('[data-testid=item]')];
    return items.length === 2 && items.every((i) => i.dataset.verdict !== 'pending');
  }, null, { timeout: 120_000 });
  assert.equal(await box('box1').getAttribute('data-verdict'), 'damaged');
  assert.equal(await box('box1').getAttribute('data-views'), '3');
  assert.equal(await box('box1').locator('.result').count(), 3);
  assert.notEqual(await box('box2').getAttribute('data-verdict'), 'damaged');
  // The worst item comes first, and its damaged view opens large with a click.
  assert.equal(await page.getByTestId('item').first().getAttribute('data-item'), 'box1');
  await box('box1').getByRole('button', { name: /box1_back\.png/ }).click();
  await page.locator('[data-testid=verdict][data-verdict=damaged]').waitFor();
  await screenshot(page, '06-item-three-views');
});

test('New item gathers photos picked one by one into one item, until Item done', async () => {
  const { page } = app;
  const as = (path) => upload(path);
  await page.getByTestId('item-new').click();
  await page.getByTestId('item-open').filter({ hasText: 'item 1' }).waitFor();
  const item = page.locator('[data-testid=item][data-item="item 1"]');
  await page.getByTestId('inspect-files').setInputFiles(as(good[48]));
  await item.and(page.locator('[data-views="1"]')).waitFor({ timeout: 120_000 });
  await page.getByTestId('inspect-files').setInputFiles(as(CRACKED));
  await item.and(page.locator('[data-views="2"]:not([data-verdict=pending])')).waitFor({ timeout: 120_000 });
  assert.equal(await item.getAttribute('data-verdict'), 'damaged');
  assert.equal(await page.getByTestId('item').count(), 1, 'the photos before New item are not listed with it');
  await screenshot(page, '07-new-item');
  await page.getByTestId('item-done').click();
  await page.getByTestId('item-new').waitFor();
  // Closed: the next pick is judged on its own again.
  await page.getByTestId('inspect-files').setInputFiles(as(good[49]));
  await page.waitForFunction(() => !document.querySelector('[data-testid=item]'), null, { timeout: 120_000 });
  await verdict().waitFor();
});

test('a file that is not an image and a corrupt PNG give clear errors, and the app keeps working', async () => {
  const { page } = app;
  await page.getByTestId('inspect-files').setInputFiles({ name: 'readme.png', mimeType: 'image/png', buffer: Buffer.from('plain text') });
  await page.getByTestId('error').filter({ hasText: 'readme.png' }).waitFor();
  assert.match(await page.getByTestId('error').innerText(), /readme\.png: this is not a PNG or JPEG image/);
  const png = readFileSync(HELD_OUT_GOOD);
  await page.getByTestId('inspect-files').setInputFiles({ name: 'cut.png', mimeType: 'image/png', buffer: png.subarray(0, png.length >> 1) });
  await page.getByTestId('error').filter({ hasText: 'cut.png' }).waitFor();
  assert.match(await page.getByTestId('error').innerText(), /cut\.png: the image is damaged or incomplete/);
  await screenshot(page, '05-bad-files');
  await page.getByRole('button', { name: 'Dismiss' }).click();
  const result = await inspect(CRACKED);
  assert.equal(result.verdict, 'damaged');
  assert.deepEqual(app.problems, []);
});
