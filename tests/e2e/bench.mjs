// `cargo xtask bench` (browser half): DamageLens against onnxruntime-web on the same
// EfficientNet-Lite0 file and the same photos, in one headless Chromium, then the
// report. Run by xtask after the native half, whose JSON it reads.
//
// usage: node bench.mjs [--quick] NATIVE.json ORT_NATIVE.json OUT.md PLOT.png
import { writeFileSync, readFileSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import os from 'node:os';
import { serveDist, launch, ROOT, DIST, elpvMono } from './harness.mjs';

const args = process.argv.slice(2);
const quick = args[0] === '--quick';
const [nativeJson, ortNativeJson, outMd, outPng] = quick ? args.slice(1) : args;
const RUNS = quick ? 3 : 30;
const GPU_RUNS = quick ? 2 : 30;
const WARMUP = quick ? 1 : 3;
const TRAIN = quick ? 20 : 200;
const ORT_DIR = join(ROOT, 'tests', 'e2e', 'node_modules', 'onnxruntime-web', 'dist');
const ELPV = join(ROOT, 'tests', 'data', 'elpv', 'images');
const PHOTO = '/demo/samples/cell0013.png';
const MODEL = '/efficientnet_lite0.onnx';

const native = JSON.parse(readFileSync(nativeJson, 'utf8'));
const ortNative = JSON.parse(readFileSync(ortNativeJson, 'utf8'));

function series(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const n = s.length;
  return { median: n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, min: s[0], max: s[n - 1], runs: n };
}
const log = (...m) => console.error('bench:', ...m);

const server = await serveDist({ '/ort/': ORT_DIR, '/bench/': join(ROOT, 'bench', 'page'), '/elpv/': ELPV });
const result = { quick, date: new Date().toISOString().slice(0, 10) };
try {
  // --- Engine and onnxruntime-web, in a browser that offers WebGPU (SwiftShader here).
  const browser = await launch(['--enable-unsafe-webgpu']);
  result.chromium = browser.version();
  const page = await browser.newPage();
  page.on('pageerror', (e) => log('page error', e.message));
  await page.goto(`${server.url}bench/index.html`);
  await page.waitForFunction(() => window.benchReady === true);
  const started = await page.evaluate(() => window.bench.start());
  result.engine = { model: started.model, readyMs: started.readyMs, backendMs: started.backendMs, webgpu: started.status.adapter !== null };
  log('engine ready', started);

  const good = elpvMono('0.0').slice(0, TRAIN).map((p) => `/elpv/${p.split('/').pop()}`);
  result.training = {};
  for (const method of ['PatchCore', 'Padim']) {
    result.training[method] = await page.evaluate(([urls, m]) => window.bench.train(urls, m), [good, method]);
    log('trained', method, result.training[method]);
  }
  result.memory = { afterTraining: await page.evaluate(() => window.bench.memory()) };

  await page.evaluate(() => window.bench.setBackend('Cpu'));
  const cpu = await page.evaluate(([u, w, r]) => window.bench.inspect(u, w, r), [PHOTO, WARMUP, RUNS]);
  result.cpu = { ...series(cpu.map((c) => c.ms)), stages: cpu[Math.floor(cpu.length / 2)].stages };
  log('DamageLens CPU', result.cpu);
  result.memory.afterInspection = await page.evaluate(() => window.bench.memory());

  if (result.engine.webgpu) {
    const status = await page.evaluate(() => window.bench.setBackend('WebGpu'));
    if (status.active === 'WebGpu') {
      const gpu = await page.evaluate(([u, w, r]) => window.bench.inspect(u, w, r), [PHOTO, WARMUP, GPU_RUNS]);
      result.gpu = { ...series(gpu.map((c) => c.ms)), stages: gpu[Math.floor(gpu.length / 2)].stages };
      log('DamageLens WebGPU', result.gpu);
    }
  }

  const ortWasm = await page.evaluate(([m, u, w, r]) => window.bench.ort(m, u, 'wasm', w, r), [MODEL, PHOTO, WARMUP, RUNS]);
  result.ortWasm = { ...series(ortWasm.ms), loadMs: ortWasm.loadMs };
  result.ortVersion = ortWasm.version;
  log('onnxruntime-web wasm', result.ortWasm);
  if (result.engine.webgpu) {
    try {
      const ortGpu = await page.evaluate(([m, u, w, r]) => window.bench.ort(m, u, 'webgpu', w, r), [MODEL, PHOTO, WARMUP, GPU_RUNS]);
      result.ortGpu = { ...series(ortGpu.ms), loadMs: ortGpu.loadMs };
      log('onnxruntime-web webgpu', result.ortGpu);
    } catch (e) {
      result.ortGpuError = String(e.message ?? e).split('\n')[0];
      log('onnxruntime-web webgpu failed:', result.ortGpuError);
    }
  }

  // The plot, drawn by the browser (its fonts) and kept as a PNG.
  const rows = [
    { label: 'DamageLens CPU (photo to verdict)', ours: true, ...result.cpu },
    { label: 'onnxruntime-web wasm (backbone)', ours: false, ...result.ortWasm },
    ...(result.gpu ? [{ label: 'DamageLens WebGPU (photo to verdict)', ours: true, ...result.gpu }] : []),
    ...(result.ortGpu ? [{ label: 'onnxruntime-web webgpu (backbone)', ours: false, ...result.ortGpu }] : []),
    { label: 'DamageLens native (photo to verdict)', ours: true, ...native.inspect_ms },
    { label: 'DamageLens native (backbone, tract)', ours: true, ...native.backbone_ms },
    { label: 'onnxruntime native (backbone)', ours: false, ...ortNative.backbone_ms },
  ];
  await page.evaluate(([r, t]) => window.bench.plot(r, t), [rows, `Latency per frame, EfficientNet-Lite0 at 224 px (${RUNS} runs)`]);
  mkdirSync(dirname(outPng), { recursive: true });
  await page.locator('#plot').screenshot({ path: outPng });
  await browser.close();

  // --- Page loads, as a person meets them: the CPU backend (no WebGPU flag).
  const plain = await launch();
  const context = await plain.newContext();
  const app = await context.newPage();
  const firstVerdict = async (go) => {
    const t0 = Date.now();
    await go();
    const ready = app.getByTestId('profile-ready').filter({ hasText: '(demo)' });
    await ready.waitFor({ timeout: 300_000 });
    const readyS = (Date.now() - t0) / 1000;
    await app.getByRole('button', { name: /^Inspect cell0013\.png \(cracked\)$/ }).click();
    await app.getByTestId('verdict').waitFor({ timeout: 120_000 });
    return { readyS, verdictS: (Date.now() - t0) / 1000 };
  };
  result.load = { cold: await firstVerdict(() => app.goto(`${server.url}#/all`)) };
  // Let the demo profile reach IndexedDB and the service worker finish its cache.
  await app.locator('[data-testid=offline][data-state=ready]').waitFor({ timeout: 300_000 });
  result.load.warm = await firstVerdict(() => app.reload());
  log('page loads', result.load);
  await plain.close();
} finally {
  await server.close();
}

// --- Sizes on disk.
const size = (file) => { const bytes = readFileSync(file); return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length }; };
result.bundles = Object.fromEntries(readdirSync(DIST).filter((f) => f.endsWith('.wasm')).map((f) => [f, size(join(DIST, f))]));
result.ortBundle = size(join(ORT_DIR, 'ort-wasm-simd-threaded.wasm'));
result.modelBytes = statSync(join(DIST, 'efficientnet_lite0.onnx')).size;
result.modelWeights = JSON.parse(readFileSync(join(DIST, 'efficientnet_lite0.manifest.json'), 'utf8')).weights ?? 'float32';
writeFileSync(outMd.replace(/\.md$/, '.json'), JSON.stringify({ ...result, native, ortNative }, null, 2));
writeFileSync(outMd, report(result));
log('wrote', outMd, 'and', outPng);

function report(r) {
  const ms = (s) => `${s.median.toFixed(1)} (${s.min.toFixed(1)} to ${s.max.toFixed(1)})`;
  const ratio = (a, b) => (a / b).toFixed(2);
  const mb = (b) => (b / 1e6).toFixed(2);
  const gzipTotal = Object.values(r.bundles).reduce((t, b) => t + b.gzip, 0);
  const rawTotal = Object.values(r.bundles).reduce((t, b) => t + b.raw, 0);
  const fps = 1000 / r.cpu.median;
  const training = Object.entries(r.training).map(([m, t]) => `| ${m === 'Padim' ? 'PaDiM' : m} | ${t.images} | ${t.seconds.toFixed(1)} | ${(t.images / t.seconds).toFixed(1)} | ${mb(t.profileBytes)} |`);
  const st = (s) => `preprocess ${s.preprocess.toFixed(1)}, backbone ${s.backbone.toFixed(1)}, scoring ${s.scoring.toFixed(1)}, post-processing ${s.postprocess.toFixed(1)}, readback ${s.readback.toFixed(1)}`;
  const target = (ok) => (ok ? 'met' : '**not met**');
  return `# Speed and size: DamageLens against onnxruntime

Regenerated by \`cargo xtask bench\`${r.quick ? ' --quick (few runs: a smoke test, not a measurement)' : ''} on ${r.date}.
Every figure below comes from one run on one machine; ratios are DamageLens / the peer,
so below 1.00 means DamageLens is faster.

- Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GB, ${os.platform()} ${os.release()}; no GPU (WebGPU is Chromium's SwiftShader, software Vulkan on the CPU).
- Chromium ${r.chromium}; onnxruntime-web ${r.ortVersion} (npm); onnxruntime ${ortNative.version} (PyPI); model ${r.engine.model}, the same ONNX file for all.
- Photo: \`cell0013.png\` (a cracked ELPV cell, 300x300). DamageLens's time is a whole inspection: photo bytes in, verdict, heatmap and outline out, through the engine worker's messages. onnxruntime's is the backbone alone (the feature maps DamageLens uses), on a tensor preprocessed beforehand.
- Native figures come from the tests' build of the CLI (dependencies, tract included, at opt-level 3; DamageLens's own code at 2).
- ${RUNS} timed runs after ${WARMUP} warm-up runs (WebGPU: ${GPU_RUNS}); median (fastest to slowest), in ms.

![latency per frame](${outPng.split('/').pop()})

## Latency per frame

| runtime | ms per frame | ratio |
|---|---|---|
| DamageLens CPU (tract in wasm, one thread) | ${ms(r.cpu)} | ${ratio(r.cpu.median, r.ortWasm.median)} |
| onnxruntime-web, wasm, one thread | ${ms(r.ortWasm)} | 1.00 |
${r.gpu ? `| DamageLens WebGPU | ${ms(r.gpu)} | ${r.ortGpu ? ratio(r.gpu.median, r.ortGpu.median) : 'n/a'} |\n` : ''}${r.ortGpu ? `| onnxruntime-web, webgpu | ${ms(r.ortGpu)} | 1.00 |\n` : r.ortGpuError ? `| onnxruntime-web, webgpu | failed: ${r.ortGpuError} | n/a |\n` : ''}| DamageLens native, whole inspection | ${ms(native.inspect_ms)} | ${ratio(native.inspect_ms.median, ortNative.backbone_ms.median)} |
| DamageLens native, backbone (tract) | ${ms(native.backbone_ms)} | ${ratio(native.backbone_ms.median, ortNative.backbone_ms.median)} |
| onnxruntime native (CPU, one thread), backbone | ${ms(ortNative.backbone_ms)} | 1.00 |

Where DamageLens's time goes (median run, ms): CPU: ${st(r.cpu.stages)}.${r.gpu ? ` WebGPU: ${st(r.gpu.stages)}.` : ''} Native: ${st(native.stages)}.

## Training, load and size

| method | good photos | seconds | photos per second | profile MB |
|---|---|---|---|---|
${training.join('\n')}

- Engine start in a worker (model fetched, checked and planned): ${(r.engine.readyMs / 1000).toFixed(1)} s; WebGPU tried and warmed up after ${(r.engine.backendMs / 1000).toFixed(1)} s. onnxruntime-web's session creation: ${(r.ortWasm.loadMs / 1000).toFixed(1)} s.
- Cold page load (empty browser; includes training the demo product on first run) to the demo ready: ${r.load.cold.readyS.toFixed(1)} s, to the first verdict: ${r.load.cold.verdictS.toFixed(1)} s.
- Warm reload (everything cached, demo saved) to ready: ${r.load.warm.readyS.toFixed(1)} s, to the first verdict: ${r.load.warm.verdictS.toFixed(1)} s.
- WebAssembly bundles: ${Object.entries(r.bundles).map(([f, b]) => `\`${f}\` ${mb(b.raw)} MB (${mb(b.gzip)} MB gzip)`).join(', ')}; together ${mb(rawTotal)} MB, ${mb(gzipTotal)} MB gzip. onnxruntime-web's wasm: ${mb(r.ortBundle.raw)} MB (${mb(r.ortBundle.gzip)} MB gzip).
- Model download: ${mb(r.modelBytes)} MB (${r.modelWeights} weights).
- Engine memory (WebAssembly, its peak): ${mb(r.memory.afterTraining)} MB after training ${TRAIN} photos twice, ${mb(r.memory.afterInspection)} MB after inspecting.

## Targets

| target | measured | |
|---|---|---|
| CPU latency at most 1.0x onnxruntime-web wasm | ${ratio(r.cpu.median, r.ortWasm.median)}x | ${target(r.cpu.median <= r.ortWasm.median)} |
| live camera at least 10 frames per second on the CPU | ${fps.toFixed(1)} fps | ${target(fps >= 10)} |
| training 200 photos in at most 30 s | ${r.training.Padim.seconds.toFixed(1)} s (PaDiM, ${r.training.Padim.images} photos), ${r.training.PatchCore.seconds.toFixed(1)} s (PatchCore) | ${r.quick ? 'n/a (quick run)' : target(r.training.Padim.seconds <= 30 && r.training.PatchCore.seconds <= 30)} |
| both wasm bundles at most 3 MB gzip | ${mb(gzipTotal)} MB | ${target(gzipTotal <= 3e6)} |
| model download at most 10 MB | ${mb(r.modelBytes)} MB (${r.modelWeights} weights) | ${target(r.modelBytes <= 10e6)} |
`;
}
