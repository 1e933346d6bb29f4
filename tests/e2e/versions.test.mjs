// Versions: the demo's training is version 1; *Mark as good* learns the photo (version 2,
// scoring differently); *Roll back* to version 1 makes version 3, and the same photo
// gets exactly the score version 1 gave it, also after a reload. A file exported at
// version 3 and imported once the product has moved on asks before replacing it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { usingApp, screenshot, elpvMono, upload, scoreOf, version } from './harness.mjs';

let app;
usingApp((opened) => { app = opened; });

const DEMO = 'Solar cell, mono (demo)';


test('every change is a version, and rolling back restores the earlier model exactly', async () => {
  const { page } = app;
  await page.getByTestId('profile-ready').filter({ hasText: DEMO }).waitFor({ timeout: 300_000 });
  await version(page, 1).filter({ hasText: 'trained on 40 good photos' }).waitFor();
  assert.equal(await page.getByTestId('version').count(), 1);

  const cracked = elpvMono('1.0')[20];
  const before = await scoreOf(page, cracked);
  // A good cell marked as good: learnt, 41 photos in all.
  await scoreOf(page, elpvMono('0.0')[300]);
  await page.getByTestId('mark-good').click();
  await page.getByTestId('profile-ready').filter({ hasText: 'on 41 good photos' }).waitFor({ timeout: 120_000 });
  await version(page, 2).filter({ hasText: 'learnt 1 more good photo without relearning the others (41 in all' }).waitFor();
  assert.equal(await version(page, 2).getByTestId('version-current').count(), 1, 'the newest version is the one in use');
  const retrained = await scoreOf(page, cracked);
  assert.notEqual(retrained, before, 'the retrained model scores the cell differently');

  await version(page, 1).getByTestId('rollback').click();
  await version(page, 3).filter({ hasText: 'rolled back to version 1' }).waitFor({ timeout: 60_000 });
  await page.getByTestId('profile-ready').filter({ hasText: 'on 40 good photos' }).waitFor();
  assert.equal(await scoreOf(page, cracked), before, 'version 1 is back, exactly');
  await page.getByTestId('versions').scrollIntoViewIfNeeded();
  await screenshot(page, '85-versions');

  // Kept across a reload: the history, and the rolled-back model the engine loads.
  await page.reload();
  await version(page, 3).waitFor({ timeout: 60_000 });
  assert.equal(await page.getByTestId('version').count(), 3);
  await page.getByTestId('profile-ready').filter({ hasText: 'on 40 good photos' }).waitFor();
  assert.equal(await scoreOf(page, cracked), before, 'and after a reload');

  // Exported at version 3; the product moves on (version 4); importing the file asks
  // before putting the older version back, then makes it version 5 of the same product.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('profile-export').click()]);
  const exported = join(mkdtempSync(join(tmpdir(), 'dl-')), download.suggestedFilename());
  await download.saveAs(exported);
  await version(page, 2).getByTestId('rollback').click();
  await version(page, 4).filter({ hasText: 'rolled back to version 2' }).waitFor({ timeout: 60_000 });
  await page.getByTestId('profile-import').setInputFiles(exported);
  const question = page.getByTestId('import-question');
  await question.waitFor();
  assert.match(await question.innerText(), /at version 4\. .* is its version 3, older than the one here/);
  await page.getByTestId('import-replace').click();
  await version(page, 5).filter({ hasText: 'imported from a file, its version 3' }).waitFor({ timeout: 60_000 });
  assert.equal(await page.getByTestId('product-list').count(), 0, 'no copy of the product was made');
  assert.equal(await scoreOf(page, cracked), before, 'the imported version scores as it did');
  assert.deepEqual(app.problems, []);
});

test('a product trained with an earlier model file is learnt again from its saved photos', async () => {
  const { page } = app;
  // Make the saved profile one of another backbone, as an update of the model file does.
  const patched = await page.evaluate(() => new Promise((resolve, reject) => {
    const open = indexedDB.open('damagelens');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction('profiles', 'readwrite');
      const store = tx.objectStore('profiles');
      const all = store.getAll();
      all.onsuccess = () => {
        const record = all.result[0];
        const bytes = new Uint8Array(record.bytes);
        const text = new TextDecoder('latin1').decode(bytes);
        const at = text.search(/sha256\\":\\"[0-9a-f]{64}/) + 'sha256\\":\\"'.length;
        for (let i = 0; i < 64; i++) bytes[at + i] = 'f'.charCodeAt(0);
        store.put({ ...record, bytes: bytes.buffer });
        tx.oncomplete = () => resolve(at > 20);
      };
    };
  }));
  assert.ok(patched, 'the profile header names its backbone');
  await page.reload();
  await page.getByTestId('error').filter({ hasText: 'was trained with an earlier version of the model: learning it again from its 41 saved photos' })
    .waitFor({ timeout: 60_000 });
  await version(page, 6).filter({ hasText: 'trained on 41 good photos' }).waitFor({ timeout: 120_000 });
  await page.getByTestId('profile-ready').filter({ hasText: 'on 41 good photos' }).waitFor();
  await scoreOf(page, elpvMono('1.0')[20]);
  assert.deepEqual(app.problems, []);
});
