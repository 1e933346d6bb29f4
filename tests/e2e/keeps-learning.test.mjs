// A product keeps learning: *Mark as good* learns the one photo into the model without
// relearning the 40 others (the version says so, the progress counts one photo), and
// the model it gives is exactly the one a full training on the 41 photos gives (same
// score, to the last digit). The learning state is kept across a reload; after a roll
// back there is none for the model in use, so the next *Mark as good* trains on all
// the photos once, and goes on learning from there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usingApp, screenshot, elpvMono, upload, scoreOf, version } from './harness.mjs';

let app;
usingApp((opened) => { app = opened; });

const DEMO = 'Solar cell, mono (demo)';


/// Marks a good cell as good; returns when it clicked, and (a promise of) the largest
/// photo count the training progress showed.
async function markGood(page, path) {
  await scoreOf(page, path);
  const seen = page.evaluate(() => new Promise((resolve) => {
    // Every progress bar shown, even one gone before the observer ran.
    let most = 0;
    const look = (el) => {
      const bars = el.matches?.('[data-testid=train-progress]') ? [el] : [...(el.querySelectorAll?.('[data-testid=train-progress]') ?? [])];
      for (const bar of bars) most = Math.max(most, Number(bar.getAttribute('max')));
    };
    const observer = new MutationObserver((records) => {
      for (const r of records) {
        look(r.target);
        r.addedNodes.forEach(look);
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, attributes: true });
    setTimeout(() => { observer.disconnect(); resolve(most); }, 8_000);
  }));
  const clicked = Date.now();
  await page.getByTestId('mark-good').click();
  return { clicked, most: seen };
}

test('mark as good learns the one photo, exactly as a full training would', async () => {
  const { page } = app;
  await page.getByTestId('profile-ready').filter({ hasText: DEMO }).waitFor({ timeout: 300_000 });
  await version(page, 1).filter({ hasText: 'trained on 40 good photos' }).waitFor();
  const cracked = elpvMono('1.0')[20];
  const good = elpvMono('0.0');
  const before = await scoreOf(page, cracked);

  const { clicked, most } = await markGood(page, good[300]);
  await version(page, 2).filter({ hasText: 'learnt 1 more good photo without relearning the others (41 in all' }).waitFor({ timeout: 120_000 });
  const learnt_ms = Date.now() - clicked;
  assert.equal(await most, 1, 'only the new photo went through the engine');
  await page.getByTestId('profile-ready').filter({ hasText: 'on 41 good photos' }).waitFor();
  const learnt = await scoreOf(page, cracked);
  assert.notEqual(learnt, before, 'the photo was learnt');
  await page.getByTestId('versions').scrollIntoViewIfNeeded();
  await screenshot(page, '86-learnt-one-more');

  // A full training on the same 41 photos, the same way (PaDiM): the same model.
  await page.getByTestId('method-padim').check();
  await page.getByTestId('train-start').and(page.locator(':enabled')).waitFor({ timeout: 60_000 });
  const training = Date.now();
  await page.getByTestId('train-start').click();
  await version(page, 3).filter({ hasText: 'trained on 41 good photos' }).waitFor({ timeout: 180_000 });
  console.log(`mark as good to its version: ${learnt_ms} ms; a full training on the same photos: ${Date.now() - training} ms`);
  assert.equal(await scoreOf(page, cracked), learnt, 'learning one more photo gave exactly the fully trained model');

  // The state is kept: after a reload, the next photo is learnt on its own too.
  await page.reload();
  await page.getByTestId('profile-ready').filter({ hasText: 'on 41 good photos' }).waitFor({ timeout: 120_000 });
  assert.equal(await (await markGood(page, good[301])).most, 1);
  await version(page, 4).filter({ hasText: 'learnt 1 more good photo without relearning the others (42 in all' }).waitFor({ timeout: 120_000 });

  // Rolled back to version 2: no state for that model, so the next mark as good trains
  // on all 43 saved photos, and learning goes on from there.
  await version(page, 2).getByTestId('rollback').click();
  await version(page, 5).filter({ hasText: 'rolled back to version 2' }).waitFor({ timeout: 60_000 });
  await page.getByTestId('profile-ready').filter({ hasText: 'on 41 good photos' }).waitFor();
  assert.equal(await (await markGood(page, good[302])).most, 43);
  await version(page, 6).filter({ hasText: 'trained on 43 good photos' }).waitFor({ timeout: 180_000 });
  assert.equal(await (await markGood(page, good[303])).most, 1);
  await version(page, 7).filter({ hasText: 'learnt 1 more good photo without relearning the others (44 in all' }).waitFor({ timeout: 120_000 });
  assert.deepEqual(app.problems, []);
});
