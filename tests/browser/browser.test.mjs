// The browser example (examples/browser) built with Vite against the npm pack tarball,
// installed the way a user installs it, served by `vite preview` and driven in headless
// Chromium: the threaded build with cross-origin isolation, one thread without it, a clear
// error without SIMD, outputs checked against tests/js/reference.mjs, and a screenshot.
// Then examples/webpack, built by webpack on the same tarball, in the same browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { referenceFlash } from '../js/reference.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const VITE = join(ROOT, 'node_modules/vite/bin/vite.js');
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = join(ROOT, 'build/browser/screenshot.png');
const HEADS = 8, DIM = 64;

let work, app, tarball, browser, profile;
const servers = [];

function startPreview(port, isolation) {
  const server = spawn('node', [VITE, 'preview', '--port', String(port), '--strictPort', '--host', '127.0.0.1'], {
    // NO_COLOR: with CI set, vite colours its output and splits the URL with escape codes.
    cwd: app, env: { ...process.env, ATTNKIT_ISOLATION: isolation ? 'on' : 'off', NO_COLOR: '1', FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  servers.push(server);
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vite preview did not start in 30 s:\n${log}`)), 30000);
    const onData = (chunk) => {
      log += chunk;
      if (log.replace(/\x1b\[[0-9;]*m/g, '').includes(`127.0.0.1:${port}`)) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${port}/`);
      }
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.on('exit', (code) => reject(new Error(`vite preview exited (${code}):\n${log}`)));
  });
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/bootstrap.sh as root (it installs chromium)`);
  work = mkdtempSync(join(tmpdir(), 'attnkit-browser-'));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  // The example's own files, with attnkit from the tarball (not the source tree) and the
  // repository's Vite (the example's package.json names it; CI installs nothing more).
  app = join(work, 'app');
  mkdirSync(app);
  for (const file of ['index.html', 'main.js', 'vite.config.js']) cpSync(join(ROOT, 'examples/browser', file), join(app, file));
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'browser-example', private: true, type: 'module' }));
  tarball = join(work, packed[0].filename);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
  symlinkSync(join(ROOT, 'node_modules/vite'), join(app, 'node_modules/vite'), 'dir');
  const t0 = Date.now();
  execFileSync('node', [VITE, 'build', '--logLevel', 'warn'], { cwd: app, stdio: ['ignore', 'inherit', 'inherit'], timeout: 120000 });
  console.log(`vite build: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  profile = mkdtempSync(join(tmpdir(), 'attnkit-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1020, height: 860 },
  });
});

after(async () => {
  await browser?.close();
  for (const server of servers) (server.kill ? server.kill() : server.close());
  if (work) rmSync(work, { recursive: true, force: true });
  if (profile) rmSync(profile, { recursive: true, force: true });
});

// Opens the page and waits for the runtime panel to leave its loading state.
async function open(url, { initScript } = {}) {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(err.message));
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(msg.text()); });
  if (initScript) await page.addInitScript(initScript);
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('runtime').dataset.state !== 'loading', null, { timeout: 60000 });
  return { page, problems };
}

// A run in the page, then the same output checked here against the float64 reference.
async function runAndCheck(page, type, n) {
  const result = await page.evaluate(async ([t, len]) => {
    const r = await window.attnkitDemo.run(t, len);
    const { q, k, v, output } = window.attnkitDemo.last;
    return { ...r, q: Array.from(q), k: Array.from(k), v: Array.from(v), output: Array.from(output) };
  }, [type, n]);
  assert.ok(result.pass, `page check of ${type} n=${n}: ${result.relErr}`);
  const ref = referenceFlash({ q: result.q, k: result.k, v: result.v, headsQ: HEADS, headDim: DIM, causal: type === 'causal' }).output;
  let err = 0, big = 0;
  for (let i = 0; i < ref.length; ++i) {
    err = Math.max(err, Math.abs(ref[i] - result.output[i]));
    big = Math.max(big, Math.abs(ref[i]));
  }
  assert.ok(err / big < 1e-4, `${type} n=${n}: relative error ${err / big} against tests/js/reference.mjs`);
  return result;
}

test('cross-origin isolated: the threaded build, correct output, the page stays responsive, screenshot',
  { timeout: 240000 }, async () => {
    const { page, problems } = await open(await startPreview(4173, true));
    const panel = await page.$eval('#runtime', (el) => ({ ...el.dataset, text: el.textContent }));
    assert.equal(panel.state, 'ready', panel.text);
    assert.equal(await page.evaluate(() => window.crossOriginIsolated), true);
    assert.equal(panel.variant, 'simd-threads', panel.text);
    assert.match(panel.text, /threads available/);
    await runAndCheck(page, 'flash', 256);
    await runAndCheck(page, 'causal', 300);
    await page.evaluate(() => window.attnkitDemo.setThreads(1));
    assert.equal(await page.$eval('#runtime', (el) => el.dataset.threads), '1');
    await page.evaluate(() => window.attnkitDemo.setThreads(navigator.hardwareConcurrency));
    // The chart's points: two types over a few lengths; frames keep coming during the calls.
    const sweep = await page.evaluate(async () => [
      ...await window.attnkitDemo.sweep('linear', [256, 512, 1024, 2048]),
      ...await window.attnkitDemo.sweep('local', [256, 512, 1024, 2048]),
      ...await window.attnkitDemo.sweep('flash', [256, 512, 1024, 2048]),
    ]);
    for (const r of sweep) assert.ok(r.pass && r.gflops > 0, `${r.type} n=${r.n}: ${JSON.stringify(r)}`);
    const long = sweep.filter((r) => r.wallMs > 300);
    assert.ok(long.length > 0 && long.every((r) => r.frames > 0), `frames during long calls: ${JSON.stringify(long.map((r) => r.frames))}`);
    console.log(sweep.map((r) => `${r.type} n=${r.n}: ${r.ms.toFixed(1)} ms, ${r.gflops.toFixed(1)} GFLOP/s, err ${r.relErr.toExponential(1)}`).join('\n'));
    await runAndCheck(page, 'causal', 1024);
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`screenshot: ${SCREENSHOT}`);
    assert.deepEqual(problems, []);
    await page.close();
  });

test('not isolated: one thread, and the page says why', { timeout: 120000 }, async () => {
  const { page, problems } = await open(await startPreview(4174, false));
  const panel = await page.$eval('#runtime', (el) => ({ ...el.dataset, text: el.textContent }));
  assert.equal(await page.evaluate(() => window.crossOriginIsolated), false);
  assert.equal(panel.state, 'ready', panel.text);
  assert.equal(panel.variant, 'simd');
  assert.equal(panel.threads, '1');
  assert.match(panel.text, /not cross-origin isolated/);
  await runAndCheck(page, 'flash', 200);
  assert.deepEqual(problems, []);
  await page.close();
});

test('without SIMD: a clear error, nothing started', { timeout: 60000 }, async () => {
  // Simulated: the engine's WebAssembly.validate refuses every module, as one without SIMD
  // refuses the package's SIMD probe.
  const { page } = await open(`http://127.0.0.1:4174/`, { initScript: () => { WebAssembly.validate = () => false; } });
  const panel = await page.$eval('#runtime', (el) => ({ ...el.dataset, text: el.textContent }));
  assert.equal(panel.state, 'error');
  assert.match(panel.text, /lacks WebAssembly SIMD128/);
  await page.close();
});

// A static server with the isolation headers, as a production server would send them.
function serveStatic(dir, port) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const server = createServer((req, res) => {
    const path = normalize(join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
    const file = path.endsWith('/') ? join(path, 'index.html') : path;
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': types[extname(file)] || 'application/octet-stream',
      'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
    res.end(readFileSync(file));
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(`http://127.0.0.1:${port}/`)));
}

test('examples/webpack: the bundle runs threaded on the page and in an AttentionWorker', { timeout: 120000 }, async () => {
  const wp = join(work, 'webpack-app');
  mkdirSync(join(wp, 'src'), { recursive: true });
  for (const file of ['index.html', 'webpack.config.js', 'src/index.js']) cpSync(join(ROOT, 'examples/webpack', file), join(wp, file));
  writeFileSync(join(wp, 'package.json'), JSON.stringify({ name: 'webpack-example', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], { cwd: wp, stdio: ['ignore', 'ignore', 'inherit'] });
  const t0 = Date.now();
  const log = execFileSync('node', [join(ROOT, 'node_modules/webpack-cli/bin/cli.js'), '--no-color'],
    { cwd: wp, encoding: 'utf8', timeout: 120000, env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') } });
  console.log(`webpack build: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  assert.doesNotMatch(log, /ERROR/, log);
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(err.message));
  await page.goto(await serveStatic(wp, 4175));
  await page.waitForFunction(() => document.body.dataset.state === 'done', null, { timeout: 60000 });
  const result = JSON.parse(await page.textContent('body'));
  assert.equal(result.page.variant, 'simd-threads', JSON.stringify(result));
  assert.equal(result.worker.variant, 'simd-threads');
  assert.ok(result.maxDifference < 1e-6, `page vs worker output: ${result.maxDifference}`);
  assert.deepEqual(problems, []);
  await page.close();
});
