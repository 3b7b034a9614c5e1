// Builds what is missing or stale: the native core and its tests (CMake), and the two
// WebAssembly variants in dist/wasm (emcmake). `node scripts/build.mjs [native|wasm|cuda]...`
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

// nvcc from $CUDACXX, the PATH or the CUDA Toolkit's default prefix; null when absent.
export function findNvcc() {
  const candidates = [process.env.CUDACXX, 'nvcc', '/usr/local/cuda/bin/nvcc'].filter(Boolean);
  for (const nvcc of candidates) {
    if (spawnSync(nvcc, ['--version'], { stdio: 'ignore' }).status === 0) return nvcc;
  }
  return null;
}

// The CUDA backend (cuda/): compiled only, since the test machines have no GPU; its tests
// and benchmark run on a GPU machine through cuda/run_device.sh.
export function buildCuda(nvcc) {
  const dir = 'build/cuda';
  if (!existsSync(join(ROOT, dir, 'CMakeCache.txt'))) {
    run('cmake', ['-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DATTN_CUDA=ON',
      `-DCMAKE_CUDA_COMPILER=${nvcc}`]);
  }
  run('cmake', ['--build', dir, '-j', JOBS, '--target', 'attn_cuda_tests', 'attn_cuda_c']);
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
  if (want('cuda')) {
    const nvcc = findNvcc();
    if (nvcc) buildCuda(nvcc);
    else console.log('cuda: no nvcc found, CUDA backend not built');
  }
}
