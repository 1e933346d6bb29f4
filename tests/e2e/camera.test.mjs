// The live camera, driven by Chromium's fake camera (NOTES.md): frames are judged one
// after another with a verdict, a heatmap and frames per second; Freeze stops the flow;
// Save frame downloads the frame as a PNG; with an item open, each press of "Add this
// view" judges the picture as one of its views; good photos for training are taken with it.
// A browser that refuses the camera gets a
// message with the way out, and photos can still be picked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { serveDist, launch, openApp, screenshot, elpvMono, upload } from './harness.mjs';

let server;
before(async () => { server = await serveDist(); });
after(async () => { await server?.close(); });

const frames = async (page) => Number(await page.getByTestId('camera-status').getAttribute('data-frames'));

async function demoReady(page) {
  await page.getByTestId('profile-ready').filter({ hasText: '(demo)' }).waitFor({ timeout: 300_000 });
}

test('the camera streams frames into verdicts, freezes and saves a frame', async () => {
  const browser = await launch(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']);
  try {
    const { page, problems } = await openApp(browser, server.url, { width: 768, height: 1024 });
    await demoReady(page);
    await page.getByTestId('camera-start').click();
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=camera-status]')?.getAttribute('data-frames')) >= 4, null, { timeout: 120_000 });
    const verdict = page.getByTestId('verdict');
    assert.match(await verdict.getAttribute('data-verdict'), /^(ok|check|damaged)$/);
    assert.match(await page.getByTestId('latency-ms').textContent(), /^\d+$/);
    assert.ok(Number(await page.getByTestId('camera-status').getAttribute('data-fps')) > 0, 'frames per second are shown');
    // A good photo of the product lies faintly over the picture to line the item up; it can be hidden.
    assert.match(await page.getByTestId('camera-reference').getAttribute('src'), /^blob:/);
    assert.ok(await page.getByTestId('camera-reference').evaluate((img) => img.complete && img.naturalWidth > 0), 'the guide photo loads');
    await page.getByTestId('camera-guide').uncheck();
    assert.equal(await page.getByTestId('camera-reference').count(), 0);
    await page.getByTestId('camera-guide').check();
    await page.getByTestId('camera-reference').waitFor();
    // The heatmap is drawn for the live frame.
    const drawn = await page.getByTestId('heatmap').evaluate((c) => c.width > 0 && c.height > 0);
    assert.ok(drawn, 'the overlay canvas holds the frame');
    // Between frames the last verdict stays: it never blinks out while the next is judged.
    for (let i = 0; i < 20; i += 1) {
      assert.equal(await verdict.count(), 1, 'a verdict is always shown while the camera runs');
      await page.waitForTimeout(50);
    }
    await screenshot(page, '50-camera-live');

    await page.getByTestId('camera-pause').click();
    await page.waitForTimeout(500); // the frame in flight may still land
    const frozen = await frames(page);
    await page.waitForTimeout(1500);
    assert.equal(await frames(page), frozen, 'no frame is judged while frozen');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('camera-save').click()]);
    const saved = readFileSync(await download.path());
    assert.deepEqual([...saved.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG file');
    assert.match(download.suggestedFilename(), /^damagelens-frame-\d+\.png$/);

    await page.getByTestId('camera-pause').click();
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid=camera-status]')?.getAttribute('data-frames')) > n, frozen, { timeout: 60_000 });

    // New item: the camera becomes a shutter, each press adds a judged view to the item.
    await page.getByTestId('item-new').click();
    await page.waitForTimeout(500); // the frame in flight may still land
    const shutter = await frames(page);
    const item = page.locator('[data-testid=item][data-item="item 1"]');
    await page.getByTestId('camera-add-view').click();
    await item.and(page.locator('[data-views="1"]:not([data-verdict=pending])')).waitFor({ timeout: 60_000 });
    await page.getByTestId('camera-add-view').click();
    await item.and(page.locator('[data-views="2"]:not([data-verdict=pending])')).waitFor({ timeout: 60_000 });
    assert.match(await item.getAttribute('data-verdict'), /^(ok|check|damaged)$/);
    assert.equal(await frames(page), shutter, 'no live frame replaces the views while the item is open');
    await screenshot(page, '53-camera-item');
    await page.getByTestId('item-done').click();
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid=camera-status]')?.getAttribute('data-frames')) > n, shutter, { timeout: 60_000 });
    await page.getByTestId('camera-stop').click();
    await page.getByTestId('camera-start').waitFor();

    // Good photos for training can come from the camera too: each is saved at once.
    const count = async () => Number((await page.getByTestId('photo-count').textContent()).match(/^(\d+)/)[1]);
    const before = await count();
    await page.getByTestId('capture-open').click();
    await page.waitForFunction(() => [...document.querySelectorAll('video')].some((v) => v.readyState >= 2 && v.videoWidth > 0 && !v.classList.contains('hidden')));
    await page.getByTestId('capture-take').click();
    await page.getByTestId('photo-count').filter({ hasText: `${before + 1} good photo` }).waitFor({ timeout: 30_000 });
    await page.getByTestId('capture-take').click();
    await page.getByTestId('photo-count').filter({ hasText: `${before + 2} good photo` }).waitFor({ timeout: 30_000 });
    await page.getByTestId('capture-close').click();
    await screenshot(page, '52-camera-captured-good');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

/// Starts the camera where it cannot work: the message says why and what to do, and a
/// picked photo is still judged.
async function cameraFailsButPhotosWork(flags, expected, shot) {
  const browser = await launch(flags);
  try {
    const { page, problems } = await openApp(browser, server.url);
    await demoReady(page);
    await page.getByTestId('camera-start').click();
    await page.getByTestId('error').filter({ hasText: 'Camera' }).waitFor({ timeout: 30_000 });
    const message = await page.getByTestId('error').textContent();
    assert.match(message, expected);
    assert.match(message, /pick photos instead/i);
    const cracked = elpvMono('1.0')[0];
    await page.getByTestId('inspect-files').setInputFiles(upload(cracked));
    await page.getByTestId('verdict').waitFor({ timeout: 120_000 });
    await screenshot(page, shot);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
}

test('a refused camera says what to do, and picked photos still work', async () => {
  // No fake permission UI: headless Chromium refuses the request.
  await cameraFailsButPhotosWork(['--use-fake-device-for-media-stream', '--deny-permission-prompts'], /Camera/, '51-camera-refused');
});

test('a device with no camera at all says so, and picked photos still work', async () => {
  // Permission granted, but no fake device: headless Chromium has no camera.
  await cameraFailsButPhotosWork(['--use-fake-ui-for-media-stream'], /no camera/, '52-no-camera');
});
