// Shared by the browser tests: serve the built app (dist/) on loopback, start headless
// Chromium, read the data the setup fetched, and keep screenshots for a person to look at.
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { readFile, mkdir } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { basename, extname, join, normalize, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = join(ROOT, 'dist');
export const SHOTS = join(ROOT, 'tests', 'e2e', 'screenshots');

const COMPRESSED = new Set(['.html', '.js', '.mjs', '.wasm', '.css', '.json', '.svg', '.webmanifest']);
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.wasm': 'application/wasm', '.css': 'text/css', '.json': 'application/json', '.png': 'image/png',
  '.svg': 'image/svg+xml', '.onnx': 'application/octet-stream', '.webmanifest': 'application/manifest+json',
};

/// Serves dist/ at the root, and each of `mounts` ({ '/prefix/': directory }) under its
/// prefix. With `network` ({ bitsPerSecond, latencyMs }), every response waits the
/// latency and all of them share one link of that bandwidth, as a slow network would
/// (Chromium's own emulation does not slow a page's workers); text and wasm go gzipped
/// then, as a web server sends them.
export async function serveDist(mounts = {}, network = null) {
  let linkFreeAt = 0;
  const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
  const send = async (res, body) => {
    if (!network) return res.end(body);
    await sleep(network.latencyMs);
    const CHUNK = 16 * 1024;
    for (let at = 0; at < body.length; at += CHUNK) {
      const chunk = body.subarray(at, at + CHUNK);
      const start = Math.max(Date.now(), linkFreeAt);
      linkFreeAt = start + (chunk.length * 8 * 1000) / network.bitsPerSecond;
      await sleep(linkFreeAt - Date.now());
      if (!res.write(chunk)) await new Promise((ok) => res.once('drain', ok));
    }
    res.end();
  };
  if (!existsSync(join(DIST, 'index.html'))) throw new Error(`${DIST}/index.html is missing: run \`trunk build\` (cargo xtask test does).`);
  const server = createServer(async (req, res) => {
    let path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    let root = DIST;
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (path.startsWith(prefix)) { root = dir; path = path.slice(prefix.length - 1); break; }
    }
    const file = join(root, path.endsWith('/') ? `${path}index.html` : path);
    try {
      let body = await readFile(file);
      const headers = { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' };
      if (network && COMPRESSED.has(extname(file)) && /gzip/.test(req.headers['accept-encoding'] ?? '')) {
        body = gzipSync(body);
        headers['Content-Encoding'] = 'gzip';
      }
      res.writeHead(200, { ...headers, 'Content-Length': body.length });
      await send(res, body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  // Closing drops kept-alive connections too: a closed server is a network that is gone.
  const close = () => new Promise((ok) => { server.close(ok); server.closeAllConnections(); });
  return { url: `http://127.0.0.1:${server.address().port}/`, close };
}

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

export async function launch(extraArgs = []) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/// A browser with a profile on disk, as a person's browser is: needed where incognito
/// differs (Chromium never offers to install an app from an incognito window).
export async function launchPersistent(userDataDir) {
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/// For a test file that drives one app: serves dist/, launches Chromium and opens the app
/// before the file's tests (handing it to `opened`), closes both after them.
export function usingApp(opened) {
  let server, browser;
  before(async () => {
    server = await serveDist();
    browser = await launch();
    opened(await openApp(browser, server.url));
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });
}

/// A page that fails the test on any uncaught error and records every request: the
/// page's, its workers' and its service worker's (the page has a browser context of its
/// own). A CSP violation is a console error, so it fails the test too.
/// `browser` may also be a persistent context (launchPersistent).
export async function openApp(browser, url, viewport = { width: 1280, height: 800 }) {
  const page = browser.contexts ? await browser.newPage({ viewport }) : await browser.newPage();
  await page.setViewportSize(viewport);
  const problems = [];
  const requests = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // Resource failures are reported with their URL by the response handler below.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`); });
  page.context().on('request', (r) => requests.push(r.url()));
  page.context().on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`); });
  // Tests drive every panel: the workbench page shows them all (a station opens on Inspect).
  await page.goto(url.includes('#') || url.startsWith('about:') ? url : `${url}#/all`);
  return { page, problems, requests };
}

/// Waits until the service worker has stored every file of the build and controls the page.
export async function offlineReady(page) {
  await page.locator('[data-testid=offline][data-state=ready]').waitFor({ timeout: 300_000 });
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 60_000 });
}

/// How many trained profiles this browser has saved: training is over only once its
/// profile is saved, and a reload before that trains again.
export async function savedProfiles(page) {
  return page.evaluate(() => new Promise((ok, ko) => {
    const open = indexedDB.open('damagelens');
    open.onerror = () => ko(open.error);
    open.onsuccess = () => {
      const count = open.result.transaction('profiles').objectStore('profiles').count();
      count.onsuccess = () => { open.result.close(); ok(count.result); };
      count.onerror = () => ko(count.error);
    };
  }));
}

export async function screenshot(page, name) {
  await mkdir(SHOTS, { recursive: true });
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/// ELPV mono cells with the given defect probability, in labels.csv order.
export function elpvMono(probability) {
  return elpv(probability, 'mono');
}

/// ELPV cells of one kind ('mono' or 'poly') with the given defect probability.
export function elpv(probability, kind) {
  const labels = join(ROOT, 'tests', 'data', 'elpv', 'labels.csv');
  if (!existsSync(labels)) throw new Error(`${labels} is missing: run \`cargo xtask setup\` first.`);
  return readFileSync(labels, 'utf8').split('\n').map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 3 && f[1] === probability && f[2] === kind)
    .map((f) => join(ROOT, 'tests', 'data', 'elpv', f[0]));
}

/// A PNG photo on disk as a file input takes it (named `name`, its own name by default).
export function upload(path, name = basename(path)) {
  return { name, mimeType: 'image/png', buffer: readFileSync(path) };
}

/// The photo at `path` taken again, drawn in the page's browser: moved by `dx`, `dy`
/// (fractions of its sides), turned by `turn` degrees, zoomed by `zoom` and lit at
/// `light`, mirrored where the move leaves no pixels. A PNG upload named `name`.
/// Inspects one photo (none may be shown before) and returns its raw score.
export async function scoreOf(page, path) {
  await page.locator('[data-testid=inspect-files]:enabled').waitFor({ timeout: 60_000 });
  await page.getByTestId('inspect-files').setInputFiles([upload(path)]);
  const verdict = page.locator(`[data-testid=verdict][data-file="${basename(path)}"]`);
  await verdict.waitFor({ timeout: 60_000 });
  return verdict.getAttribute('data-raw-score');
}

/// Version `n` in the product's history.
export const version = (page, n) => page.locator(`[data-testid=version][data-version="${n}"]`);

export async function reshoot(page, path, { dx = 0, dy = 0, turn = 0, zoom = 1, light = 1 }, name) {
  const b64 = await page.evaluate(async ({ png, dx, dy, turn, zoom, light }) => {
    const bitmap = await createImageBitmap(new Blob([Uint8Array.from(atob(png), (c) => c.charCodeAt(0))], { type: 'image/png' }));
    const [w, h] = [bitmap.width, bitmap.height];
    const canvas = new OffscreenCanvas(w, h);
    const ctx = canvas.getContext('2d');
    ctx.filter = `brightness(${light})`;
    ctx.translate(w / 2 + dx * w, h / 2 + dy * h);
    ctx.rotate((turn * Math.PI) / 180);
    ctx.scale(zoom, zoom);
    // The photo, and around it its mirror images, so no empty corner is left.
    for (const ox of [-1, 0, 1]) for (const oy of [-1, 0, 1]) {
      ctx.save();
      ctx.translate(ox * w, oy * h);
      ctx.scale(ox ? -1 : 1, oy ? -1 : 1);
      ctx.drawImage(bitmap, -w / 2, -h / 2);
      ctx.restore();
    }
    const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
    let text = '';
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text);
  }, { png: readFileSync(path).toString('base64'), dx, dy, turn, zoom, light });
  return { name, mimeType: 'image/png', buffer: Buffer.from(b64, 'base64') };
}
