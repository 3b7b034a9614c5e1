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

const TS_CONSUMER = `
import init, { AttentionWorker, WasmFlashAttention, transfer, type RuntimeInfo } from 'attnkit';
await init();
const q = new Float32Array([1, 0, 0, 1]), v = new Float32Array([3, 5, 7, 9]);
const direct: Float32Array = new WasmFlashAttention({ heads: 1, dim: 2 }).forward(q, q, v);
const worker = await AttentionWorker.create({ numThreads: 2 });
const info: RuntimeInfo = worker.info;
const remote = await worker.construct('WasmFlashAttention', { heads: 1, dim: 2 });
const moved: Float32Array = await remote.forward(transfer(q.slice()), q, v);
worker.dispose();
console.log(JSON.stringify({ direct: Array.from(direct), worker: Array.from(moved), variant: info.variant }));
`;

test('npm pack tarball installs into an empty folder and runs', () => {
  const work = mkdtempSync(join(tmpdir(), 'attnkit-pack-'));
  try {
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work],
      { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
    const { filename, files, size, unpackedSize } = packed[0];
    const paths = files.map((f) => f.path);
    for (const needed of ['js/index.js', 'js/index.cjs', 'js/worker.js', 'js/attention_worker.js', 'types/index.d.ts', 'types/index.d.cts', 'dist/wasm/attnkit-simd.wasm',
      'dist/wasm/attnkit-simd-threads.wasm', 'dist/wasm/attnkit-simd-threads.worker.js',
      'dist/wasm/package.json']) {
      assert.ok(paths.includes(needed), `tarball lacks ${needed}`);
    }
    assert.ok(!paths.some((p) => p.startsWith('src/') || p.startsWith('tests/')), 'tarball carries sources or tests');
    console.log(`tarball ${filename}: ${size} bytes packed, ${unpackedSize} unpacked, ${files.length} files`);
    for (const f of files.filter((f) => f.path.endsWith('.wasm'))) console.log(`  ${f.path}: ${f.size} bytes`);
    // Budgets with room (387 KB packed, 470-480 KB per .wasm when set): a jump means
    // something unintended got in.
    assert.ok(size < 1_000_000, `tarball ${size} bytes packed`);
    for (const f of files.filter((f) => f.path.endsWith('.wasm'))) assert.ok(f.size < 1_000_000, `${f.path}: ${f.size} bytes`);

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

    // CommonJS: require() gives load(), which resolves to the same API.
    writeFileSync(join(app, 'consumer.cjs'), `
      require('attnkit').load().then((api) => {
        const attn = new api.WasmFlashAttention({ heads: 1, dim: 2 });
        const out = attn.forward(new Float32Array([1, 0, 0, 1]), new Float32Array([1, 0, 0, 1]),
                                 new Float32Array([3, 5, 7, 9]));
        console.log(JSON.stringify(Array.from(out)));
      });`);
    const cjsOut = JSON.parse(execFileSync('node', ['consumer.cjs'], { cwd: app, encoding: 'utf8', timeout: 60000 }));
    // Two keys, weights softmax([1, 0] / sqrt(2)) for query 0 and the mirror for query 1.
    const w = 1 / (1 + Math.exp(-1 / Math.sqrt(2)));
    const expected = [3 * w + 7 * (1 - w), 5 * w + 9 * (1 - w), 3 * (1 - w) + 7 * w, 5 * (1 - w) + 9 * w];
    cjsOut.forEach((x, i) => assert.ok(Math.abs(x - expected[i]) < 1e-5, `CommonJS output ${cjsOut} vs ${expected}`));

    // TypeScript: the package's own declarations under tsc --strict, then the compiled file
    // runs, the same two-key case on the main thread and in an AttentionWorker.
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: {
      strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', types: [], skipLibCheck: false,
    }, files: ['consumer.mts'] }));
    writeFileSync(join(app, 'consumer.mts'), TS_CONSUMER);
    execFileSync('node', [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], { cwd: app, stdio: ['ignore', 'inherit', 'inherit'] });
    const tsOut = JSON.parse(execFileSync('node', ['consumer.mjs'], { cwd: app, encoding: 'utf8', timeout: 60000 }));
    for (const out of [tsOut.direct, tsOut.worker]) {
      out.forEach((x, i) => assert.ok(Math.abs(x - expected[i]) < 1e-5, `TypeScript output ${out} vs ${expected}`));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
