// The WebGPU backend in a real browser: headless Chromium with --enable-unsafe-webgpu
// (SwiftShader, software Vulkan: slow, but real WebGPU). The engine picks WebGPU by
// itself; its verdicts and heatmaps must match the CPU path's on the same photos; a GPU
// lost in the middle of inspection hands over to the CPU and the inspection goes on.
// Without WebGPU the CPU inspects and the switch says why WebGPU is not offered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openApp, screenshot } from './harness.mjs';

let server, browser, app;
// Demo samples: one cracked, one good.
const SAMPLES = [/^Inspect cell0013\.png \(cracked\)$/, /^Inspect .* \(good\)$/];

before(async () => {
  server = await serveDist();
  browser = await launch(['--enable-unsafe-webgpu']);
  app = await openApp(browser, server.url);
});
after(async () => {
  await browser?.close();
  await server?.close();
});

const backend = () => app.page.getByTestId('backend');

/// Clicks a demo sample and waits for its verdict on `expected` backend; returns the
/// verdict and the heatmap canvas's pixels.
async function inspectSample(name, expected) {
  const { page } = app;
  const verdict = page.getByTestId('verdict');
  const before = (await verdict.count()) ? await verdict.getAttribute('data-raw-score') : null;
  await page.getByRole('button', { name }).first().click();
  await page.waitForFunction((prev) => {
    const v = document.querySelector('[data-testid=verdict]');
    return v && v.getAttribute('data-raw-score') !== prev;
  }, before, { timeout: 180_000 });
  assert.equal(await page.getByTestId('inspected-on').innerText(), expected);
  const stages = page.getByTestId('stage-times');
  assert.equal(await stages.getAttribute('data-backend'), expected);
  const pixels = await page.evaluate(() => {
    const c = document.querySelector('[data-testid=heatmap]');
    return { width: c.width, height: c.height, data: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data) };
  });
  return {
    verdict: await verdict.getAttribute('data-verdict'),
    raw: Number(await verdict.getAttribute('data-raw-score')),
    pixels,
  };
}

/// Mean and largest per-channel difference of two drawings of the same photo.
function difference(a, b) {
  assert.deepEqual([a.width, a.height], [b.width, b.height]);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.data.length, max };
}

/// Chooses a backend with the switch and waits until the engine has taken it.
async function switchTo(option, active) {
  await app.page.getByTestId('backend-select').selectOption(option);
  await app.page.locator(`[data-testid=backend][data-active=${active}]`).waitFor();
}

const onGpu = {};

test('with WebGPU offered, the engine inspects on it by itself', async () => {
  const { page } = app;
  await page.getByTestId('profile-ready').filter({ hasText: '(demo)' }).waitFor({ timeout: 300_000 });
  await page.locator('[data-testid=backend][data-active=WebGPU]').waitFor({ timeout: 180_000 });
  assert.match(await backend().innerText(), /^WebGPU/);
  assert.equal(await page.getByTestId('backend-select').inputValue(), 'webgpu');
  for (const name of SAMPLES) onGpu[name] = await inspectSample(name, 'WebGPU');
  assert.equal(onGpu[SAMPLES[0]].verdict, 'damaged');
  assert.equal(onGpu[SAMPLES[1]].verdict, 'ok');
  // Every stage has a time, the GPU's readback too.
  await page.getByTestId('stage-times').locator('summary').click();
  for (const stage of ['preprocess', 'backbone', 'scoring', 'postprocess', 'readback']) {
    const ms = parseFloat(await page.locator(`[data-testid=stage-times] [data-stage=${stage}] td`).innerText());
    assert.ok(ms >= 0 && Number.isFinite(ms), `${stage}: ${ms}`);
  }
  await screenshot(page, 'webgpu-inspection');
  assert.deepEqual(app.problems, []);
});

test('switching to the CPU gives the same verdicts, scores within 1% and the same heatmaps', async () => {
  const { page } = app;
  await switchTo('cpu', 'CPU');
  for (const name of SAMPLES) {
    const cpu = await inspectSample(name, 'CPU');
    const gpu = onGpu[name];
    assert.equal(gpu.verdict, cpu.verdict, `${name}: verdicts differ`);
    assert.ok(Math.abs(gpu.raw - cpu.raw) <= 0.01 * Math.abs(cpu.raw), `${name}: GPU ${gpu.raw}, CPU ${cpu.raw}`);
    const diff = difference(gpu.pixels, cpu.pixels);
    assert.ok(diff.mean < 0.5 && diff.max <= 8, `${name}: the heatmaps differ (mean ${diff.mean}, max ${diff.max})`);
  }
  await screenshot(page, 'webgpu-then-cpu-inspection');
  assert.deepEqual(app.problems, []);
});

test('a GPU lost in the middle of inspection hands over to the CPU and the inspection goes on', async () => {
  const { page } = app;
  await switchTo('webgpu', 'WebGPU');
  await inspectSample(SAMPLES[1], 'WebGPU');
  await page.evaluate(() => window.dispatchEvent(new Event('damagelens-lose-gpu')));
  // The next photo is still judged, by the CPU, and the person is told why.
  const after = await inspectSample(SAMPLES[0], 'CPU');
  assert.equal(after.verdict, 'damaged');
  await page.getByTestId('error').filter({ hasText: 'The GPU stopped working' }).waitFor();
  assert.match(await page.getByTestId('error').innerText(), /nothing was lost/);
  await page.locator('[data-testid=backend][data-active=CPU]').waitFor();
  assert.equal(await page.getByTestId('backend-select').inputValue(), 'cpu');
  assert.equal(await page.locator('[data-testid=backend-select] option[value=webgpu]').evaluate((o) => o.disabled), true);
  // The product is untouched: still ready, and it still inspects.
  await page.getByTestId('profile-ready').filter({ hasText: '(demo)' }).waitFor();
  assert.equal((await inspectSample(SAMPLES[1], 'CPU')).verdict, 'ok');
  await screenshot(page, 'webgpu-lost-fell-back-to-cpu');
  assert.deepEqual(app.problems, []);
});

test('without WebGPU the CPU inspects and the switch says why WebGPU is not offered', async () => {
  const plain = await launch();
  try {
    const other = await openApp(plain, server.url);
    const { page } = other;
    await page.locator('[data-testid=backend][data-active=CPU]').waitFor({ timeout: 180_000 });
    const option = page.locator('[data-testid=backend-select] option[value=webgpu]');
    await page.waitForFunction(() => document.querySelector('[data-testid=backend-select] option[value=webgpu]')?.title !== '');
    assert.equal(await option.evaluate((o) => o.disabled), true);
    assert.match(await option.getAttribute('title'), /WebGPU/);
    assert.equal(await page.getByTestId('backend-select').inputValue(), 'cpu');
    assert.deepEqual(other.problems, []);
  } finally {
    await plain.close();
  }
});
