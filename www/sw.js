// DamageLens's service worker: keeps every file of one build in one cache, so the app
// opens, loads its model and inspects with no network at all.
//
// `cargo xtask finish-dist` (Trunk's post-build hook) writes dist/sw.js from this file
// and puts two constants before it: CACHE, a cache name made from the contents of the
// build, and PRECACHE, the URL of every file of the build relative to this script. Any
// change to any file changes this script, so the browser installs the new build's worker;
// once it is active it deletes the caches of older builds.
/* global CACHE, PRECACHE */

const OWN_CACHES = 'damagelens-';

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // 'reload' skips the HTTP cache: the cache must hold this build's files, not older ones.
    await cache.addAll(PRECACHE.map((url) => new Request(url, { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(OWN_CACHES) && name !== CACHE) await caches.delete(name);
    }
    // The page that registered this worker works offline from now on, not from its next load.
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  // Nothing leaves the origin (the page's CSP says so too); other methods are never cached.
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(networkThenCache(request));
});

// From the network while there is one, from this build's cache when there is none. Not
// the other way round: Trunk names the page, the engine worker's bundle and the model
// the same from build to build, so a page from the server with a worker from the cache
// could be two different builds. The network side still uses the HTTP cache.
async function networkThenCache(request) {
  try {
    return await fetch(request);
  } catch (offline) {
    const cache = await caches.open(CACHE);
    const cached = await cache.match(request, { ignoreSearch: true })
      ?? (request.mode === 'navigate' ? await cache.match(new URL('index.html', self.registration.scope).href) : undefined);
    if (cached) return cached;
    throw offline;
  }
}
