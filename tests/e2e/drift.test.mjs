// Drift: a day of ordinary good cells gives no warning; then the light and the framing
// change (cells photographed darker and turned), most are flagged, and the Inspect page
// says the model may be out of date, naming how many were flagged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { usingApp, screenshot, elpvMono, reshoot, upload } from './harness.mjs';

let app;
usingApp((opened) => { app = opened; });

const DEMO = 'Solar cell, mono (demo)';

/// A photo as a changed station takes it: turned by 20 degrees, zoomed in by 10% and
/// lit at 80%.
const changed = (path) => reshoot(app.page, path, { turn: 20, zoom: 1.1, light: 0.8 }, `changed-${basename(path)}`);

test('a run of photos from a changed station warns that the model may be out of date', async () => {
  const { page } = app;
  await page.getByTestId('profile-ready').filter({ hasText: DEMO }).waitFor({ timeout: 300_000 });
  const good = elpvMono('0.0').slice(300, 312);
  await page.getByTestId('inspect-files').setInputFiles(good.map((path) => upload(path)));
  await page.locator('[data-testid=log-total][data-entries="12"]').waitFor({ timeout: 120_000 });
  assert.equal(await page.getByTestId('drift-warning').count(), 0, 'ordinary good cells: no warning');

  const shots = [];
  for (const path of elpvMono('0.0').slice(320, 332)) shots.push(await changed(path));
  await page.getByTestId('inspect-files').setInputFiles(shots);
  await page.locator('[data-testid=log-total][data-entries="24"]').waitFor({ timeout: 120_000 });
  const warning = page.getByTestId('drift-warning');
  await warning.waitFor({ timeout: 10_000 });
  const flagged = await page.getByTestId('results-grid').locator('li.result:not(.ok)').count();
  assert.ok(flagged >= 8, `most changed shots are flagged: ${flagged} of 12`);
  assert.match(await warning.innerText(), /of the last 24 photos were flagged, where calibration expects about \d+%/);
  await warning.scrollIntoViewIfNeeded();
  await screenshot(page, '86-drift-warning');
  assert.deepEqual(app.problems, []);
});
