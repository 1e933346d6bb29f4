// Offline use and installing on a tablet. After one visit the service worker holds every
// file of the build; then the network goes away for good (the browser is set offline and
// the server is shut down) and a reload still opens the app, loads its model and
// inspects a demo sample, heatmap and all.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { serveDist, launchPersistent, openApp, offlineReady, savedProfiles, screenshot, DIST } from './harness.mjs';

let server, browser, app;

before(async () => {
  server = await serveDist();
  browser = await launchPersistent(mkdtempSync(join(tmpdir(), 'dl-offline-')));
  app = await openApp(browser, server.url, { width: 768, height: 1024 });
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/// Every file of the build, as URL paths.
function distFiles(dir = DIST) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? distFiles(path) : [`/${relative(DIST, path).split(sep).join('/')}`];
  });
}

test('the service worker stores every file of the build in one cache', async () => {
  const { page } = app;
  await offlineReady(page);
  assert.equal(await page.getByTestId('offline').innerText(), 'Works offline');
  const { names, urls } = await page.evaluate(async () => {
    const names = await caches.keys();
    const cache = await caches.open(names[0]);
    return { names, urls: (await cache.keys()).map((r) => new URL(r.url).pathname) };
  });
  assert.equal(names.length, 1);
  assert.match(names[0], /^damagelens-[0-9a-f]{16}$/);
  const expected = distFiles().filter((f) => f !== '/sw.js').sort();
  assert.ok(expected.includes('/efficientnet_lite0.onnx') && expected.some((f) => f.startsWith('/demo/samples/')));
  assert.deepEqual(urls.sort(), expected);
});

test('the app is installable: manifest, standalone, PNG icons', async () => {
  const { page } = app;
  const cdp = await page.context().newCDPSession(page);
  const { errors: manifestErrors, data } = await cdp.send('Page.getAppManifest');
  assert.deepEqual(manifestErrors, []);
  const manifest = JSON.parse(data);
  assert.equal(manifest.display, 'standalone');
  assert.equal(manifest.short_name, 'DamageLens');
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
  assert.deepEqual(installabilityErrors, []);
  const sizes = await page.evaluate(async (icons) => Promise.all(icons.map(async (icon) => {
    const bitmap = await createImageBitmap(await (await fetch(icon.src)).blob());
    return `${bitmap.width}x${bitmap.height}`;
  })), manifest.icons);
  assert.deepEqual(sizes, manifest.icons.map((i) => i.sizes));
  assert.ok(manifest.icons.some((i) => i.sizes === '192x192') && manifest.icons.some((i) => i.sizes === '512x512'));
});

test('with no network at all, a reload opens the app and inspects a demo sample', async () => {
  const { page } = app;
  await page.getByTestId('profile-ready').filter({ hasText: '(demo)' }).waitFor({ timeout: 300_000 });
  for (let tries = 0; (await savedProfiles(page)) < 1; tries++) {
    assert.ok(tries < 120, 'the demo profile is saved within a minute');
    await page.waitForTimeout(500);
  }
  await page.context().setOffline(true);
  await server.close();
  const served = [];
  page.on('response', (r) => served.push({ url: r.url(), fromServiceWorker: r.fromServiceWorker() }));
  await page.reload();
  await page.getByTestId('backend').filter({ hasText: 'CPU' }).waitFor({ timeout: 120_000 });
  await page.getByTestId('profile-ready').filter({ hasText: '(demo)' }).waitFor({ timeout: 300_000 });
  await page.getByRole('button', { name: /^Inspect .* \(cracked\)$/ }).first().click();
  const verdict = page.getByTestId('verdict');
  await verdict.waitFor({ timeout: 120_000 });
  assert.equal(await verdict.getAttribute('data-verdict'), 'damaged');
  const heatmap = await page.getByTestId('heatmap').boundingBox();
  assert.ok(heatmap && heatmap.width > 100 && heatmap.height > 100, `heatmap shown: ${JSON.stringify(heatmap)}`);
  assert.equal(await page.getByTestId('offline').getAttribute('data-state'), 'ready');
  assert.ok(served.length > 5, 'the reload loaded the app');
  const fromNetwork = served.filter((r) => r.url.startsWith('http') && !r.fromServiceWorker);
  assert.deepEqual(fromNetwork, [], 'everything came from the service worker');
  await screenshot(page, '20-offline-inspect');
  // A link to a page opens it again after a reload, offline too.
  await page.getByTestId('page-log').click();
  await page.reload();
  await page.getByTestId('log-panel').waitFor({ timeout: 120_000 });
  assert.equal(new URL(page.url()).hash, '#/log');
  assert.equal(await page.getByTestId('inspect-files').isVisible(), false);
  assert.deepEqual(app.problems, []);
});
