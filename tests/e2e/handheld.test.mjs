// Photos taken by hand: a person teaches a product from shaky tablet shots (each good
// cell shifted, turned, zoomed and lit a little differently) with the method left on
// Automatic; the page says which method was chosen and why, and the product then flags a
// hand-held shot of a cracked cell (DAMAGED, or CHECK for a person) and scores it above a
// hand-held shot of an unseen good cell, which is not DAMAGED.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { usingApp, screenshot, elpvMono, reshoot } from './harness.mjs';

let app;
const good = elpvMono('0.0');
const CRACKED = elpvMono('1.0').find((f) => f.endsWith('cell0013.png'));

usingApp((opened) => { app = opened; });

/// A hand-held shot of a photo: seeded shift up to 8%, turn up to 10 degrees, zoom up to
/// 8%, light up to 15%; the photo mirrored where the move leaves no pixels.
async function handHeld(path, seed) {
  let s = seed * 2654435761 % 4294967296 || 1;
  const rand = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return (s / 4294967296) * 2 - 1; };
  const light = 1 + 0.15 * rand();
  const [dx, dy] = [0.08 * rand(), 0.08 * rand()];
  const turn = 10 * rand();
  const zoom = 1 + 0.08 * rand();
  return reshoot(app.page, path, { dx, dy, turn, zoom, light }, `hand-${seed}-${basename(path)}`);
}

test('a product taught from hand-held shots flags a hand-held shot of a cracked cell', async () => {
  const { page } = app;
  await page.getByTestId('product-new').click();
  await page.getByTestId('profile-name').fill('Cells, by hand');
  const shots = [];
  for (let i = 0; i < 30; i++) shots.push(await handHeld(good[200 + i], i + 1));
  await page.getByTestId('train-files').setInputFiles(shots);
  await page.getByTestId('photo-count').filter({ hasText: '30 good photo(s) saved' }).waitFor({ timeout: 60_000 });
  // Automatic is the default and decides on hand-held copies itself; a person who
  // names a method may ask for the copies.
  assert.ok(await page.getByTestId('method-auto').isChecked());
  assert.ok(await page.getByTestId('hand-held').isDisabled());
  await page.getByTestId('method-patchcore').check();
  assert.ok(await page.getByTestId('hand-held').isEnabled());
  await page.getByTestId('method-auto').check();
  await page.getByTestId('train-start').and(page.locator(':enabled')).waitFor({ timeout: 300_000 });
  await page.getByTestId('train-start').click();
  await page.getByTestId('profile-ready').filter({ hasText: 'Cells, by hand' }).waitFor({ timeout: 600_000 });
  assert.match(await page.getByTestId('current-product').innerText(), /Cells, by hand/);
  // Six held-out shots (one in five of 30), three kinds of made-up damage on each.
  const why = await page.getByTestId('method-why').innerText();
  assert.match(why, /^Chosen automatically: ((PaDiM|PatchCore)( with hand-held copies)?|Ensemble) told 18 copies .* from 6 good photos/);
  assert.match(why, /PaDiM \d\.\d{3}|PaDiM told/);
  assert.ok((await page.getByTestId('product-method').innerText()).includes(why), 'the product says why too');
  await screenshot(page, '59-hand-held-method-chosen');

  const verdict = page.getByTestId('verdict');
  await page.getByTestId('inspect-files').setInputFiles(await handHeld(CRACKED, 101));
  await verdict.waitFor({ timeout: 120_000 });
  assert.match(await verdict.getAttribute('data-verdict'), /^(damaged|check)$/);
  await screenshot(page, '60-hand-held-cracked');
  const cracked = Number(await verdict.getAttribute('data-raw-score'));
  await page.getByTestId('inspect-files').setInputFiles(await handHeld(good[240], 102));
  await page.waitForFunction((prev) => document.querySelector('[data-testid=verdict]')?.getAttribute('data-raw-score') !== prev, String(cracked), { timeout: 120_000 });
  assert.notEqual(await verdict.getAttribute('data-verdict'), 'damaged');
  assert.ok(Number(await verdict.getAttribute('data-raw-score')) < cracked);
  assert.deepEqual(app.problems, []);
});
