// The inspection log: a named session, a batch of cells judged, a damage confirmed with
// its kind and an item set aside; after a reload the log holds every verdict with its
// band and decision, the CSV export parses and its counts match the panel's, filters
// narrow the counts, and the thumbnails come as a zip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { usingApp, screenshot, elpvMono, upload } from './harness.mjs';

let app;
usingApp((opened) => { app = opened; });

const DEMO = 'Solar cell, mono (demo)';

async function downloaded(page, testid) {
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testid).click()]);
  return { name: file.suggestedFilename(), bytes: readFileSync(await file.path()) };
}

/// A CSV row's fields (quoted fields may hold commas and doubled quotes).
function fields(line) {
  const out = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { out.push(field); field = ''; } else field += c;
  }
  out.push(field);
  return out;
}

test('every verdict is logged with its decision, survives a reload and exports', async () => {
  const { page } = app;
  await page.getByTestId('profile-ready').filter({ hasText: DEMO }).waitFor({ timeout: 300_000 });
  await page.getByTestId('log-session').fill('drop test 3 December');
  await page.getByTestId('log-session').press('Tab');

  const cracked = elpvMono('1.0').slice(20, 22);
  const good = elpvMono('0.0').slice(300, 302);
  await page.getByTestId('inspect-files').setInputFiles([...cracked, ...good].map((path) => upload(path)));
  await page.locator('[data-testid=log-total][data-entries="4"]').waitFor({ timeout: 120_000 });

  // The worst photo is shown first: confirm its damage as a crack.
  await page.getByTestId('results-grid').locator('button.tile').first().click();
  await page.getByTestId('decide-kind').selectOption('crack');
  await page.getByTestId('decide-damaged').click();
  await page.getByTestId('decision').filter({ hasText: 'Logged: damaged: crack.' }).waitFor();
  // Kept among the product's damaged photos, which the next calibration's damage head learns from.
  await page.getByTestId('calib-item').first().waitFor({ timeout: 30_000 });
  assert.equal(await page.getByTestId('calib-item').count(), 1);
  // The second one is set aside.
  await page.getByTestId('results-grid').locator('button.tile').nth(1).click();
  await page.getByTestId('decide-aside').click();
  await page.getByTestId('decision').filter({ hasText: 'Logged: set aside.' }).waitFor();
  const bands = await page.getByTestId('results-grid').locator('li.result').evaluateAll(
    (tiles) => tiles.map((t) => ['ok', 'check', 'damaged'].find((b) => t.classList.contains(b))));

  await page.reload();
  await page.locator('[data-testid=log-total][data-entries="4"]').waitFor({ timeout: 60_000 });
  const row = page.getByTestId('log-counts').locator(`tr[data-row="${DEMO}"]`);
  const panel = {};
  for (const band of ['ok', 'check', 'damaged']) panel[band] = Number(await row.getAttribute(`data-${band}`));
  const expected = { ok: 0, check: 0, damaged: 0 };
  for (const b of bands) expected[b] += 1;
  assert.deepEqual(panel, expected, 'the log holds every verdict with the band it was given');
  assert.match(await page.getByTestId('log-kinds').innerText(), /crack 1/);
  assert.equal(await page.getByTestId('log-entry').count(), 4);
  await page.getByTestId('log-panel').scrollIntoViewIfNeeded();
  await screenshot(page, '75-inspection-log');

  const csv = await downloaded(page, 'log-export');
  assert.match(csv.name, /^damagelens-log-\d{4}-\d{2}-\d{2}\.csv$/);
  const [header, ...rows] = csv.bytes.toString('utf8').trim().split('\n').map(fields);
  assert.deepEqual(header.slice(0, 4), ['time', 'day', 'session', 'product']);
  assert.equal(rows.length, 4);
  const column = (name) => rows.map((r) => r[header.indexOf(name)]);
  const counted = { ok: 0, check: 0, damaged: 0 };
  for (const b of column('band')) counted[b] += 1;
  assert.deepEqual(counted, panel, 'the CSV counts match the panel');
  assert.ok(column('session').every((s) => s === 'drop test 3 December'));
  assert.ok(column('product').every((p) => p === DEMO));
  assert.ok(column('model_version').every((v) => v === '1'), 'each verdict names the version that judged it (the demo\'s first)');
  assert.deepEqual(column('decision').filter(Boolean).sort(), ['damaged: crack', 'set aside']);
  assert.deepEqual(column('file').sort(), [...cracked, ...good].map((f) => basename(f)).sort());

  // A filter narrows the counts and the export alike.
  await page.getByTestId('log-filter-band').selectOption('ok');
  await page.locator(`[data-testid=log-total][data-entries="${panel.ok}"]`).waitFor();
  const zip = await downloaded(page, 'log-export-zip');
  assert.equal(zip.bytes.subarray(0, 2).toString('latin1'), 'PK');
  const names = zip.bytes.toString('latin1').match(/thumbnails\/[^\x00-\x1f]*?\.jpg/g) ?? [];
  assert.equal(new Set(names).size, panel.ok, 'one thumbnail per entry shown');
  assert.deepEqual(app.problems, []);
});
