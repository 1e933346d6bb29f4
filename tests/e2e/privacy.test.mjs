// Privacy: photos, the model and the scores never leave the device. Every request of a
// whole session (the page, the engine worker and the service worker) goes to the app's
// own origin, and the page's content security policy is in force, so a request elsewhere
// would be refused and reported, not made.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openApp, offlineReady, screenshot, elpvMono, upload } from './harness.mjs';

let server, browser, app, origin;

before(async () => {
  server = await serveDist();
  origin = new URL(server.url).origin;
  browser = await launch();
  app = await openApp(browser, server.url);
});
after(async () => {
  await browser?.close();
  await server?.close();
});

test('a whole session asks nothing of any other origin', async () => {
  const { page, requests } = app;
  await page.getByTestId('profile-ready').filter({ hasText: '(demo)' }).waitFor({ timeout: 300_000 });
  await offlineReady(page);
  await page.getByRole('button', { name: /^Inspect .* \(cracked\)$/ }).first().click();
  await page.getByTestId('verdict').waitFor({ timeout: 120_000 });
  const cracked = elpvMono('1.0').find((f) => f.endsWith('cell0013.png'));
  await page.getByTestId('inspect-files').setInputFiles(upload(cracked));
  await page.getByTestId('verdict').and(page.locator('[data-verdict=damaged]')).waitFor({ timeout: 120_000 });
  await screenshot(page, '30-privacy-session');

  const paths = requests.map((u) => new URL(u).pathname);
  // The listener sees the engine worker's and the service worker's requests too.
  for (const expected of ['/worker_loader.js', '/efficientnet_lite0.onnx', '/sw.js', '/demo/demo.json']) {
    assert.ok(paths.includes(expected), `${expected} was requested`);
  }
  assert.deepEqual(requests.filter((u) => new URL(u).origin !== origin), []);
  assert.deepEqual(app.problems, []);
});

test('the content security policy is in force and reports what it refuses', async () => {
  const { page, requests, problems } = app;
  const policy = await page.locator('meta[http-equiv=Content-Security-Policy]').getAttribute('content');
  for (const directive of ["default-src 'self'", "connect-src 'self'", "script-src 'self' 'wasm-unsafe-eval'"]) {
    assert.ok(policy.includes(directive), `the policy has ${directive}`);
  }
  // The app itself started without any inline script.
  assert.equal(await page.locator('script:not([src])').count(), 0);

  const before = requests.length;
  const failed = new Map();
  page.context().on('requestfailed', (r) => failed.set(r.url(), r.failure()?.errorText));
  const outcome = await page.evaluate(async () => {
    const violations = [];
    document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
    let fetched;
    try {
      await fetch('https://example.com/upload', { method: 'POST', body: 'a photo' });
      fetched = 'sent';
    } catch {
      fetched = 'refused';
    }
    const script = document.createElement('script');
    script.textContent = 'window.inlineScriptRan = true;';
    document.head.append(script);
    const image = new Image();
    image.src = 'https://example.com/pixel.png';
    await new Promise((ok) => { image.onerror = ok; image.onload = ok; });
    await new Promise((ok) => setTimeout(ok, 200));
    return { fetched, inlineScriptRan: window.inlineScriptRan === true, violations };
  });
  assert.equal(outcome.fetched, 'refused');
  assert.equal(outcome.inlineScriptRan, false);
  assert.deepEqual(outcome.violations.sort(), ['connect-src https://example.com/upload', 'img-src https://example.com/pixel.png', 'script-src-elem inline']);
  // The browser reports the image it refused as a request that failed on the policy; it
  // never reached the network.
  const elsewhere = requests.slice(before).filter((u) => new URL(u).origin !== origin);
  assert.deepEqual(elsewhere.map((u) => [u, failed.get(u)]), [['https://example.com/pixel.png', 'csp']]);
  // The browser says so on the console too; the harness counts those as problems.
  assert.ok(problems.length >= 3, problems.join('\n'));
  assert.ok(problems.every((p) => p.includes('Content Security Policy')), problems.join('\n'));
});
