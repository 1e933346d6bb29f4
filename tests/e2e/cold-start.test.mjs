// A cold start on a store's shared Wi-Fi (the test server shapes its answers to one
// 10 Mbit/s link with 40 ms latency; the browser's cache is empty): while the model downloads, the page already shows its
// pages and the library, and the header says how much of the model has come (a progress
// bar with the megabytes), instead of a blank screen; then the demo is learnt and a cell
// is judged. The time to that first verdict is printed (the speed bench measures it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, screenshot, elpvMono, upload } from './harness.mjs';

test('on a slow network the page shows how much of the model is still to come', async () => {
  const server = await serveDist({}, { bitsPerSecond: 10e6, latencyMs: 40 });
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    const started = Date.now();
    await page.goto(`${server.url}#/all`);
    const download = page.getByTestId('model-download');
    await download.waitFor({ timeout: 60_000 });
    await page.getByTestId('pages').waitFor();
    const said = await page.getByTestId('backend').innerText();
    const [, received, total] = said.match(/Downloading the model: ([\d.]+) of ([\d.]+) MB/) ?? [];
    assert.ok(Number(total) > 1 && Number(received) < Number(total), `the header counts the megabytes: ${said}`);
    await screenshot(page, '05-cold-start-downloading');

    await download.waitFor({ state: 'detached', timeout: 120_000 });
    console.log(`model downloaded after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await page.getByTestId('profile-ready').waitFor({ timeout: 120_000 }).catch(async (e) => { await screenshot(page, '05-debug'); throw e; });
    await page.getByTestId('inspect-files').setInputFiles([upload(elpvMono('1.0')[20])]);
    await page.getByTestId('verdict').waitFor({ timeout: 60_000 });
    console.log(`cold start at 10 Mbit/s, 40 ms: first verdict after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
    await server.close();
  }
});
