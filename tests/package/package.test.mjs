// The npm tarball, installed into an empty folder the way a user installs it,
// must import and compute correctly with no build tools and no source tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// A consumer script: random attention checked against a float64 loop.
const CONSUMER = `
import init, { WasmFlashAttention, getRuntimeInfo, checkSIMDSupport } from 'attnkit';
await init();
const heads = 3, dim = 16, n = 29;
const rand = (len) => Float32Array.from({ length: len }, () => Math.random() * 2 - 1);
const Q = rand(n * heads * dim), K = rand(n * heads * dim), V = rand(n * heads * dim);
const out = new WasmFlashAttention({ heads, dim, causal: true }).forward(Q, K, V);
let err = 0, big = 0;
for (let h = 0; h < heads; ++h) for (let i = 0; i < n; ++i) {
  const s = [];
  for (let j = 0; j <= i; ++j) {
    let x = 0;
    for (let c = 0; c < dim; ++c) x += Q[(i * heads + h) * dim + c] * K[(j * heads + h) * dim + c];
    s.push(x / Math.sqrt(dim));
  }
  const m = Math.max(...s), e = s.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b);
  for (let c = 0; c < dim; ++c) {
    let o = 0;
    for (let j = 0; j <= i; ++j) o += e[j] * V[(j * heads + h) * dim + c];
    err = Math.max(err, Math.abs(o / z - out[(i * heads + h) * dim + c]));
    big = Math.max(big, Math.abs(o / z));
  }
}
console.log(JSON.stringify({ relErr: err / big, simd: checkSIMDSupport(), info: getRuntimeInfo() }));
`;

test('npm pack tarball installs into an empty folder and runs', () => {
  const work = mkdtempSync(join(tmpdir(), 'attnkit-pack-'));
  try {
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work],
      { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
    const { filename, files, size, unpackedSize } = packed[0];
    const paths = files.map((f) => f.path);
    for (const needed of ['js/index.js', 'types/index.d.ts', 'dist/wasm/attnkit-simd.wasm',
      'dist/wasm/attnkit-simd-threads.wasm', 'dist/wasm/attnkit-simd-threads.worker.js',
      'dist/wasm/package.json']) {
      assert.ok(paths.includes(needed), `tarball lacks ${needed}`);
    }
    assert.ok(!paths.some((p) => p.startsWith('src/') || p.startsWith('tests/')), 'tarball carries sources or tests');
    console.log(`tarball ${filename}: ${size} bytes packed, ${unpackedSize} unpacked, ${files.length} files`);
    for (const f of files.filter((f) => f.path.endsWith('.wasm'))) console.log(`  ${f.path}: ${f.size} bytes`);

    const app = join(work, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', join(work, filename)],
      { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] });
    assert.ok(statSync(join(app, 'node_modules/attnkit/dist/wasm/attnkit-simd.wasm')).size > 0);
    writeFileSync(join(app, 'consumer.mjs'), CONSUMER);
    const report = JSON.parse(execFileSync('node', ['consumer.mjs'], { cwd: app, encoding: 'utf8', timeout: 60000 }));
    assert.ok(report.relErr < 1e-4, `relative error ${report.relErr}`);
    assert.equal(report.simd, true);
    assert.equal(report.info.variant, 'simd-threads');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
