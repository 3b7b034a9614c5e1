// Builds what is missing or stale: the native core and its tests (CMake), and the two
// WebAssembly variants in dist/wasm (emcmake). `node scripts/build.mjs [native|wasm]...`
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// Emscripten 3.1.6's optimizer needs Debian's acorn (TOOLCHAIN.md).
const ENV = { ...process.env, NODE_PATH: '/usr/share/nodejs' };
const JOBS = String(Math.max(1, (await import('node:os')).availableParallelism()));

export function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: ENV, ...options });
  if (result.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${result.status ?? result.signal})`);
  }
}

export function bootstrap() {
  run('bash', ['scripts/bootstrap.sh']);
}

export function buildNative() {
  const dir = 'build/native';
  if (!existsSync(join(ROOT, dir, 'CMakeCache.txt'))) {
    run('cmake', ['-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=Release']);
  }
  run('cmake', ['--build', dir, '-j', JOBS]);
}

export function buildWasm() {
  const dir = 'build/wasm';
  if (!existsSync(join(ROOT, dir, 'CMakeCache.txt'))) {
    run('emcmake', ['cmake', '-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=Release']);
  }
  run('cmake', ['--build', dir, '-j', JOBS]);
  // The Emscripten glue is CommonJS inside an ESM package.
  mkdirSync(join(ROOT, 'dist/wasm'), { recursive: true });
  copyFileSync(join(ROOT, 'wasm/package.dist.json'), join(ROOT, 'dist/wasm/package.json'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const targets = process.argv.slice(2);
  const want = (t) => targets.length === 0 || targets.includes(t);
  bootstrap();
  if (want('wasm')) buildWasm();
  if (want('native')) buildNative();
}
