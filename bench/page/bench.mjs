// The browser side of `cargo xtask bench`: drives the DamageLens engine worker (the same
// bundle the app uses, through its message protocol) and onnxruntime-web on the same
// model and photos, and draws the latency plot. tests/e2e/bench.mjs calls these.
import * as ort from '/ort/ort.all.min.mjs';

/// The engine worker, spoken to as the app does: each call has an id and resolves with
/// its own reply; the engine's status news is queued apart.
class Engine {
  constructor() {
    this.lastId = 0;
    this.pending = new Map();
    this.news = [];
    this.waiters = [];
    this.worker = new Worker('/worker_loader.js');
    this.worker.onmessage = (e) => {
      const event = e.data;
      if (event.Status) {
        this.news.push(event.Status);
        this.waiters = this.waiters.filter((w) => !w());
        return;
      }
      const [kind, body] = Object.entries(event)[0];
      const call = this.pending.get(body.id);
      if (!call || (kind !== 'Done' && kind !== 'Failed')) return;
      this.pending.delete(body.id);
      if (kind === 'Done') call.resolve(body.reply); else call.reject(new Error(body.error.message));
    };
  }

  /// The first status news (from now on, or already queued) that `pick` accepts.
  status(pick) {
    return new Promise((resolve) => {
      const check = () => {
        const i = this.news.findIndex(pick);
        if (i < 0) return false;
        resolve(this.news.splice(i, 1)[0]);
        return true;
      };
      if (!check()) this.waiters.push(check);
    });
  }

  call(request) {
    const id = ++this.lastId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, request });
    });
  }
}

let engine;
const photo = async (url) => ({ name: url.split('/').pop(), bytes: new Uint8Array(await (await fetch(url)).arrayBuffer()) });

window.bench = {
  /// Starts the worker; resolves with the ms to model ready and to the backend status.
  async start() {
    const t0 = performance.now();
    engine = new Engine();
    const ready = await engine.status((s) => s.Ready || s.Unavailable);
    if (ready.Unavailable) throw new Error(ready.Unavailable.message);
    const t1 = performance.now();
    const status = (await engine.status((s) => s.Backend)).Backend;
    return { model: ready.Ready.model, readyMs: t1 - t0, backendMs: performance.now() - t0, status };
  },

  /// Trains on the photos at `urls`; resolves with the seconds and the profile's size.
  async train(urls, method) {
    const files = await Promise.all(urls.map(photo));
    const t0 = performance.now();
    const trained = await engine.call({ Train: { name: `bench ${method}`, choice: { method, even_brightness: false }, files } });
    return { seconds: (performance.now() - t0) / 1000, profileBytes: trained.Trained.bytes.length, images: urls.length };
  },

  async setBackend(backend) {
    return (await engine.call({ SetBackend: { backend } })).Backend;
  },

  /// Inspects one photo `runs` times after `warmup` runs: round trips (photo bytes in,
  /// verdict and heatmap out) and the engine's stage times.
  async inspect(url, warmup, runs) {
    const file = await photo(url);
    const out = [];
    for (let i = 0; i < warmup + runs; i++) {
      const t0 = performance.now();
      const reply = (await engine.call({ Inspect: { file: { name: file.name, bytes: file.bytes.slice() } } })).Inspected.result;
      if (i >= warmup) out.push({ ms: performance.now() - t0, stages: reply.stages, backend: reply.backend, damaged: reply.damaged });
    }
    return out;
  },

  async memory() {
    return (await engine.call('Stats')).Stats.wasm_memory_bytes;
  },

  /// onnxruntime-web on the backbone alone: the photo preprocessed as the manifest says
  /// (outside the timing), then `runs` session runs returning the feature maps.
  async ort(modelUrl, url, provider, warmup, runs) {
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = '/ort/';
    const manifest = await (await fetch('/efficientnet_lite0.manifest.json')).json();
    const size = manifest.input.size;
    const bitmap = await createImageBitmap(await (await fetch(url)).blob());
    const canvas = new OffscreenCanvas(size, size);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(bitmap, 0, 0, size, size);
    const rgba = ctx.getImageData(0, 0, size, size).data;
    const chw = new Float32Array(3 * size * size);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < size * size; i++) chw[c * size * size + i] = (rgba[i * 4 + c] / 255 - manifest.input.mean[c]) / manifest.input.std[c];
    }
    const t0 = performance.now();
    const session = await ort.InferenceSession.create(modelUrl, { executionProviders: [provider], graphOptimizationLevel: 'all' });
    const loadMs = performance.now() - t0;
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', chw, [1, 3, size, size]) };
    const fetches = manifest.features.map((f) => f.name);
    const out = [];
    for (let i = 0; i < warmup + runs; i++) {
      const t = performance.now();
      const result = await session.run(feeds, fetches);
      // Bring the maps to the CPU, as DamageLens's verdict needs its map there.
      for (const name of fetches) await result[name].getData();
      if (i >= warmup) out.push(performance.now() - t);
    }
    await session.release();
    return { loadMs, ms: out, version: ort.env.versions?.web ?? 'unknown' };
  },

  /// Draws the latency plot on a log scale (CPU milliseconds and software-GPU seconds
  /// side by side): a bar per runtime at its median, a line from fastest to slowest.
  plot(rows, title) {
    const canvas = document.getElementById('plot');
    const g = canvas.getContext('2d');
    const left = 330, right = 110, top = 50, rowH = 42;
    canvas.height = top + rows.length * rowH + 70;
    g.fillStyle = '#fff'; g.fillRect(0, 0, canvas.width, canvas.height);
    g.fillStyle = '#111'; g.font = 'bold 16px sans-serif'; g.fillText(title, 12, 28);
    const lo = 1, hi = 10 ** Math.ceil(Math.log10(Math.max(...rows.map((r) => r.max))));
    const x = (ms) => left + (canvas.width - left - right) * (Math.log10(Math.max(ms, lo) / lo) / Math.log10(hi / lo));
    const bottom = top + rows.length * rowH;
    g.font = '12px sans-serif'; g.textAlign = 'center';
    for (let t = lo; t <= hi; t *= 10) {
      g.strokeStyle = '#ddd'; g.beginPath(); g.moveTo(x(t), top); g.lineTo(x(t), bottom); g.stroke();
      g.fillStyle = '#555'; g.fillText(t >= 1000 ? `${t / 1000} s` : `${t} ms`, x(t), bottom + 16);
    }
    g.font = '14px sans-serif';
    rows.forEach((r, i) => {
      const y = top + i * rowH;
      g.fillStyle = '#111'; g.textAlign = 'right'; g.fillText(r.label, left - 10, y + 22);
      g.fillStyle = r.ours ? '#1a73e8' : '#9aa0a6'; g.fillRect(left, y + 6, x(r.median) - left, 22);
      g.strokeStyle = '#111'; g.beginPath(); g.moveTo(x(r.min), y + 17); g.lineTo(x(r.max), y + 17); g.stroke();
      g.textAlign = 'left'; g.fillStyle = '#111'; g.fillText(`${r.median.toFixed(1)} ms`, x(r.max) + 6, y + 22);
    });
    g.fillStyle = '#555'; g.textAlign = 'left';
    g.fillText('log scale; median per frame (bar), fastest to slowest run (line); blue: DamageLens, grey: the peer', 12, canvas.height - 14);
  },
};
window.benchReady = true;
