// The evaluation page as a person uses it: pick a dataset folder in MVTec AD layout, the
// app learns from train/good, judges the test photos and shows the report by category
// with curves and the worst cases; its JSON and CSV exports agree with each other and
// with `damagelens eval` on the same folder.
//
// The folder is built here from real ELPV solar cells: good cells to learn from and to
// test, real cracked cells (no masks: ELPV has none), and good cells with a crack painted
// at a known place, whose masks are therefore exact. One photo is a broken file and one
// mask has the wrong size: both must be named in `error` while the rest goes on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync, mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { serveDist, launch, openApp, screenshot, elpvMono, ROOT } from './harness.mjs';

const good = elpvMono('0.0');
const cracked = elpvMono('1.0');
const CLI = join(ROOT, 'target', 'debug', 'damagelens');

let server, browser, app, dataset, painted;

function put(rel, bytes) {
  const path = join(dataset, rel);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, bytes);
}

/// Paints a dark crack on a cell in the browser (which decodes and encodes PNG), and its
/// mask: white where the crack is. `shrink` makes a mask of the wrong size.
async function paintCrack(page, file, i, shrink = false) {
  const b64 = readFileSync(file).toString('base64');
  const out = await page.evaluate(async ({ b64, i, shrink }) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    const { width, height } = bitmap;
    const line = (ctx, colour) => {
      ctx.strokeStyle = colour; ctx.lineWidth = 4; ctx.lineCap = 'round';
      ctx.beginPath(); ctx.moveTo(60 + 15 * i, 60); ctx.lineTo(130 + 15 * i, 230); ctx.lineTo(200, 250 - 10 * i); ctx.stroke();
    };
    const photo = new OffscreenCanvas(width, height);
    const p = photo.getContext('2d');
    p.drawImage(bitmap, 0, 0);
    line(p, 'rgb(15,15,15)');
    const mask = new OffscreenCanvas(width, height);
    const m = mask.getContext('2d');
    m.fillStyle = 'black'; m.fillRect(0, 0, width, height);
    line(m, 'white');
    let maskOut = mask;
    if (shrink) {
      maskOut = new OffscreenCanvas(40, 40);
      maskOut.getContext('2d').drawImage(mask, 0, 0, 40, 40);
    }
    const b64of = async (canvas) => {
      const buf = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
      let s = '';
      for (const x of buf) s += String.fromCharCode(x);
      return btoa(s);
    };
    return { photo: await b64of(photo), mask: await b64of(maskOut) };
  }, { b64, i, shrink });
  return { photo: Buffer.from(out.photo, 'base64'), mask: Buffer.from(out.mask, 'base64') };
}

async function buildDataset(page) {
  dataset = join(mkdtempSync(join(tmpdir(), 'dl-eval-')), 'solar-cells');
  good.slice(0, 30).forEach((f, i) => put(`train/good/${String(i).padStart(3, '0')}.png`, readFileSync(f)));
  good.slice(30, 40).forEach((f, i) => put(`test/good/${String(i).padStart(3, '0')}.png`, readFileSync(f)));
  cracked.slice(0, 10).forEach((f, i) => put(`test/crack/${String(i).padStart(3, '0')}.png`, readFileSync(f)));
  for (let i = 0; i < 6; i++) {
    const { photo, mask } = await paintCrack(page, good[40 + i], i, i === 5);
    put(`test/scratch/${String(i).padStart(3, '0')}.png`, photo);
    put(`ground_truth/scratch/${String(i).padStart(3, '0')}_mask.png`, mask);
  }
  // Only painted cracks, every mask right: for the threshold estimators that need masks.
  painted = join(dataset, '..', 'painted-cracks');
  const copy = (from, to) => { mkdirSync(join(to, '..'), { recursive: true }); writeFileSync(to, readFileSync(from)); };
  for (let i = 0; i < 10; i++) copy(join(dataset, `train/good/${String(i).padStart(3, '0')}.png`), join(painted, `train/good/${i}.png`));
  for (let i = 0; i < 10; i++) copy(join(dataset, `test/good/${String(i).padStart(3, '0')}.png`), join(painted, `test/good/${i}.png`));
  for (let i = 0; i < 6; i++) {
    const { photo, mask } = await paintCrack(page, good[46 + i], i);
    for (const [rel, bytes] of [[`test/scratch/${i}.png`, photo], [`ground_truth/scratch/${i}_mask.png`, mask]]) {
      mkdirSync(join(painted, rel, '..'), { recursive: true });
      writeFileSync(join(painted, rel), bytes);
    }
  }
  // A PNG signature followed by nonsense: the app must name it and go on.
  put('test/good/broken.png', Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('not an image at all')]));
}

/// AUROC as the Mann-Whitney statistic, ties counting one half.
function auroc(rows) {
  const pos = rows.filter((r) => r.label === 1), neg = rows.filter((r) => r.label === 0);
  let wins = 0;
  for (const p of pos) for (const n of neg) wins += p.score > n.score ? 1 : p.score === n.score ? 0.5 : 0;
  return wins / (pos.length * neg.length);
}

function parseCsv(text) {
  const [header, ...lines] = text.trim().split('\n');
  assert.equal(header, 'path,label,category,score');
  return lines.map((l) => {
    const [path, label, category, score] = l.split(',');
    return { path, label: Number(label), category, score: Number(score) };
  });
}

async function download(page, testid) {
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testid).click()]);
  const path = join(mkdtempSync(join(tmpdir(), 'dl-export-')), file.suggestedFilename());
  await file.saveAs(path);
  return { name: file.suggestedFilename(), text: readFileSync(path, 'utf8') };
}

before(async () => {
  server = await serveDist();
  browser = await launch();
  app = await openApp(browser, server.url);
  await buildDataset(app.page);
  await app.page.getByTestId('backend').filter({ hasText: 'CPU' }).waitFor({ timeout: 120_000 });
});
after(async () => {
  await browser?.close();
  await server?.close();
});

const KEYS = ['image_AUROC', 'pixel_AUROC', 'pixel_AUPRO', 'image_AP', 'pixel_IoU', 'pixel_F1', 'pixel_precision', 'pixel_recall', 'image_accuracy'];
let report, rows;

test('a dataset folder gives the twofold report by category, with curves and the worst cases', async () => {
  const { page } = app;
  await page.getByTestId('eval-folder').setInputFiles(dataset);
  await page.getByTestId('eval-layout').filter({ hasText: 'MVTec AD layout' }).waitFor();
  assert.match(await page.getByTestId('eval-layout').innerText(), /30 good training photos, 27 test photos/);
  await page.getByTestId('eval-progress').waitFor({ timeout: 60_000 });
  await page.getByTestId('eval-report').waitFor({ timeout: 600_000 });

  const rowsShown = await page.locator('[data-testid=eval-report] tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.category));
  assert.deepEqual(rowsShown, ['structural', 'surface', 'overall']);
  const errors = await page.getByTestId('error').innerText();
  assert.match(errors, /test\/good\/broken\.png/);
  assert.match(errors, /005_mask\.png: the mask is 40x40 but its photo 300x300/);

  assert.equal(await page.getByTestId('eval-method').innerText(), 'Method: PaDiM.');
  const charts = page.locator('[data-testid=eval-report] .charts img');
  assert.equal(await charts.count(), 3);
  for (const img of await charts.all()) {
    assert.ok(await img.evaluate((i) => i.complete && i.naturalWidth > 0), 'every chart is drawn');
  }
  const gallery = page.getByTestId('eval-gallery').locator('li');
  assert.equal(await gallery.count(), 8);
  assert.ok(await page.getByTestId('eval-gallery').locator('img').evaluateAll((imgs) => imgs.every((i) => i.complete && i.naturalWidth > 0)));
  await screenshot(page, '20-eval-report');
  await page.getByTestId('eval-gallery').screenshot({ path: join(ROOT, 'tests', 'e2e', 'screenshots', '21-eval-gallery.png') });
  assert.deepEqual(app.problems, []);
});

test('the exported JSON has the CLI keys, and its image AUROC is the one the CSV gives', async () => {
  const { page } = app;
  const json = await download(page, 'eval-export-json');
  const csv = await download(page, 'eval-export-csv');
  assert.equal(json.name, 'solar-cells-report.json');
  assert.equal(csv.name, 'solar-cells-scores.csv');
  report = JSON.parse(json.text);
  rows = parseCsv(csv.text);
  assert.equal(report.method, 'PaDiM');
  for (const key of KEYS) {
    assert.ok(key in report, `${key} overall`);
    for (const c of ['structural', 'surface']) assert.ok(key in report.categories[c], `${key} for ${c}`);
  }
  // 10 good (the broken one left out), 10 cracked, 6 painted.
  assert.equal(rows.length, 26);
  assert.equal(report.images, 26);
  assert.equal(report.categories.surface.anomalous, 6);
  assert.ok(Math.abs(auroc(rows) - report.image_AUROC) < 1e-12, `CSV ${auroc(rows)} vs JSON ${report.image_AUROC}`);
  const structural = rows.filter((r) => r.label === 0 || r.category === 'structural');
  assert.ok(Math.abs(auroc(structural) - report.categories.structural.image_AUROC) < 1e-12);
  // Cracked cells against good ones: far better than chance; painted cracks are plain.
  assert.ok(report.image_AUROC > 0.8, `image AUROC ${report.image_AUROC}`);
  assert.ok(report.categories.surface.pixel_AUROC > 0.8, `pixel AUROC ${report.categories.surface.pixel_AUROC}`);
  // The shown table says the same as the export.
  const shown = await page.getByTestId('eval-report').getAttribute('data-image-auroc');
  assert.equal(shown, report.image_AUROC.toFixed(3));
});

test('the command line gives the same numbers on the same folder', { skip: !existsSync(CLI) && 'build the CLI first: cargo build --bin damagelens' }, () => {
  const out = mkdtempSync(join(tmpdir(), 'dl-cli-'));
  execFileSync(CLI, ['eval', '--dataset', dataset, '--json', join(out, 'r.json'), '--scores', join(out, 's.csv')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const cli = JSON.parse(readFileSync(join(out, 'r.json'), 'utf8'));
  const cliRows = parseCsv(readFileSync(join(out, 's.csv'), 'utf8'));
  assert.deepEqual(cliRows.map((r) => r.path), rows.map((r) => r.path));
  // Native and WebAssembly tract round differently in the last bits; nothing more.
  cliRows.forEach((r, i) => assert.ok(Math.abs(r.score - rows[i].score) <= 1e-4 * Math.abs(r.score), `${r.path}: CLI ${r.score}, page ${rows[i].score}`));
  for (const key of KEYS) {
    assert.ok(Math.abs(cli[key] - report[key]) < 0.01, `${key}: CLI ${cli[key]}, page ${report[key]}`);
  }
  assert.equal(cli.threshold_method, report.threshold_method);
});

/// Evaluates `folder` with the options set, and waits until a new report replaces the shown one.
async function evaluateAgain(page, folder) {
  const before = await page.getByTestId('eval-report').innerText();
  await page.getByTestId('eval-folder').setInputFiles(folder);
  await page.waitForFunction((b) => {
    const r = document.querySelector('[data-testid=eval-report]');
    return r && r.innerText !== b;
  }, before, { timeout: 600_000 });
}

test('with the method chosen automatically, the report says which and why, and so does its export', async () => {
  const { page } = app;
  await page.getByTestId('eval-train-auto').check();
  await evaluateAgain(page, dataset);
  const shown = await page.getByTestId('eval-method').innerText();
  // 30 good training photos: 6 held out, three kinds of made-up damage on each.
  const m = shown.match(/^Method: ((?:PaDiM|PatchCore)(?: with hand-held copies)?|Ensemble)\. Chosen automatically: \1 told 18 copies of your good photos .* from 6 good photos/);
  assert.ok(m, shown);
  const json = JSON.parse((await download(page, 'eval-export-json')).text);
  assert.equal(json.method, m[1]);
  assert.ok(shown.endsWith(json.method_why), 'the export keeps the reason shown');
  assert.ok(json.image_AUROC > 0.8, `image AUROC ${json.image_AUROC}`);
  await page.getByTestId('eval-method').screenshot({ path: join(ROOT, 'tests', 'e2e', 'screenshots', '25-eval-method-chosen.png') });
});

test('with the current product and a threshold chosen on masks, the gallery shows the ground truth', async () => {
  const { page } = app;
  await page.getByTestId('error').getByRole('button', { name: 'Dismiss' }).click();
  await page.getByTestId('eval-current').check();
  await page.getByTestId('eval-threshold').selectOption('max-iou');
  await evaluateAgain(page, painted);
  const text = await page.getByTestId('eval-threshold-used').innerText();
  assert.match(text, /IoU/i, text);
  // 2 painted cells choose the threshold; 10 good and 4 painted are judged.
  const json = JSON.parse((await download(page, 'eval-export-json')).text);
  assert.equal(json.images, 14);
  assert.equal(json.anomalous, 4);
  assert.equal(json.timing, null, 'no training happened, so no training time');
  assert.ok(json.pixel_AUROC > 0.8, `pixel AUROC ${json.pixel_AUROC}`);
  const truths = page.getByTestId('eval-gallery').locator('img[alt^="Ground truth of test/scratch/"]');
  assert.equal(await truths.count(), 4);
  assert.ok(await truths.evaluateAll((imgs) => imgs.every((i) => i.complete && i.naturalWidth === 300)));
  assert.equal(await page.getByTestId('error').count(), 0, 'a clean folder gives no message');
  await page.locator('[data-testid=eval-report] .charts').screenshot({ path: join(ROOT, 'tests', 'e2e', 'screenshots', '22-eval-charts.png') });
  await page.getByTestId('eval-gallery').screenshot({ path: join(ROOT, 'tests', 'e2e', 'screenshots', '23-eval-gallery-masks.png') });
  await page.setViewportSize({ width: 768, height: 1024 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.getByTestId('eval-report').screenshot({ path: join(ROOT, 'tests', 'e2e', 'screenshots', '24-eval-report-768-dark.png') });
  assert.deepEqual(app.problems, []);
});

test('Cancel stops an evaluation between two photos, and the engine takes the next one', async () => {
  const { page } = app;
  await page.getByTestId('eval-train-padim').check();
  await page.getByTestId('eval-folder').setInputFiles(dataset);
  await page.getByTestId('eval-progress').waitFor({ timeout: 60_000 });
  await page.getByTestId('eval-cancel').click();
  assert.equal(await page.getByTestId('eval-progress').count(), 0);
  assert.equal(await page.getByTestId('eval-report').count(), 0, 'the earlier report is gone with the folder it was about');
  // The same engine, with the evaluation dropped: the folder can be chosen again.
  await page.getByTestId('eval-folder').and(page.locator(':enabled')).waitFor({ timeout: 120_000 });
  await page.getByTestId('backend').filter({ hasText: 'CPU' }).waitFor({ timeout: 120_000 });
  await page.waitForTimeout(2000);
  const errors = await page.getByTestId('error').count() ? await page.getByTestId('error').innerText() : '';
  assert.doesNotMatch(errors, /evaluation stopped|no evaluation is under way/);
  assert.deepEqual(app.problems, []);
});
