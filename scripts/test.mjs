// `npm test`: builds what is missing, then runs every suite and prints a summary.
//   native   GoogleTest, AVX2/AVX-512 and scalar builds of the core
//   js       node --test on the JS API, both WASM variants
//   types    tsc --strict on a consumer of the hand-written declarations
//   package  npm pack, install into an empty folder, import from ESM, CommonJS and TypeScript
//   browser  the Vite example (examples/browser) built on the tarball, in headless Chromium
//   sanitizers  the GoogleTest suite built with clang under ASan+UBSan and under TSan
//   fuzz     each libFuzzer target of tests/fuzz for ATTN_FUZZ_SECONDS (default 30) from its seed corpus
//   cuda     compiles the CUDA backend and its tests where nvcc exists (they run on a GPU
//            machine: cuda/run_device.sh)
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootstrap, buildCuda, buildNative, buildWasm, findNvcc, run } from './build.mjs';
import { asan, fuzz, tsan } from './sanitize.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const results = [];

function step(name, fn) {
  const start = Date.now();
  try {
    fn();
    results.push({ step: name, result: 'pass', seconds: (Date.now() - start) / 1000 });
  } catch (err) {
    results.push({ step: name, result: 'FAIL', seconds: (Date.now() - start) / 1000 });
    console.error(`\n${name} failed: ${err.message}`);
  }
}

step('bootstrap', bootstrap);
// A fresh clone, or one whose package.json gained a devDependency since the last install.
const DEV_TOOLS = ['node_modules/.bin/tsc', 'node_modules/.bin/vite', 'node_modules/playwright-core/package.json'];
if (!DEV_TOOLS.every((p) => existsSync(join(ROOT, p)))) step('npm install', () => run('npm', ['install', '--no-audit', '--no-fund']));
step('build wasm', buildWasm);
step('build native', buildNative);
if (results.every((r) => r.result === 'pass')) {
  step('native tests', () => run('ctest', ['--test-dir', 'build/native', '--output-on-failure']));
  step('js tests', () => run('node', ['--test', '--test-reporter=spec', 'tests/js/']));
  step('types', () => run('node_modules/.bin/tsc', ['-p', 'tests/types']));
  step('package', () => run('node', ['--test', '--test-reporter=spec', 'tests/package/']));
  step('browser', () => run('node', ['--test', '--test-reporter=spec', 'tests/browser/']));
  step('sanitizers', () => {
    asan();
    tsan();
  });
  step('fuzz', () => fuzz(Number(process.env.ATTN_FUZZ_SECONDS ?? 30)));
}
const nvcc = findNvcc();
if (nvcc) step('cuda compile', () => buildCuda(nvcc));
else results.push({ step: 'cuda compile', result: 'skip', seconds: 0 });

console.log('\nstep            result  seconds');
for (const r of results) console.log(`${r.step.padEnd(16)}${r.result.padEnd(8)}${r.seconds.toFixed(1).padStart(7)}`);
process.exit(results.every((r) => r.result !== 'FAIL') ? 0 : 1);
