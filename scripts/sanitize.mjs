// The native suite under clang's sanitizers, and the libFuzzer targets of tests/fuzz.
//   node scripts/sanitize.mjs asan    GoogleTest suite, AddressSanitizer + UBSan (build/asan)
//   node scripts/sanitize.mjs tsan    the same suite under ThreadSanitizer (build/tsan)
//   node scripts/sanitize.mjs fuzz [seconds] [target...]   each target from its seed corpus (build/fuzz)
// Every sanitizer report aborts the process (-fno-sanitize-recover, halt_on_error), so a
// report fails the step; a fuzzer crash leaves its input in build/fuzz/artifacts/<target>/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './build.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const JOBS = String(Math.max(1, (await import('node:os')).availableParallelism()));

export const FUZZ_TARGETS = ['flash_forward_fuzz', 'kv_cache_fuzz', 'sparse_attention_fuzz', 'linear_attention_fuzz',
  'weights_load_fuzz'];

export function findClang() {
  for (const cxx of [process.env.ATTN_CLANGXX, 'clang++', 'clang++-14'].filter(Boolean)) {
    if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status === 0) return cxx;
  }
  throw new Error('clang++ not found (scripts/bootstrap.sh installs clang and libclang-rt-14-dev)');
}

// Only the targets asked for: the scalar variant and the benchmark add build time and no
// code the sanitizers would not already see in the native variant's tests.
function buildClang(dir, options, targets) {
  if (!existsSync(join(ROOT, dir, 'CMakeCache.txt'))) {
    run('cmake', ['-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=RelWithDebInfo', `-DCMAKE_CXX_COMPILER=${findClang()}`,
      ...options]);
  }
  run('nice', ['cmake', '--build', dir, '-j', JOBS, '--target', ...targets]);
}

const SAN_ENV = {
  ...process.env,
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1:strict_init_order=1:detect_stack_use_after_return=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  TSAN_OPTIONS: 'halt_on_error=1:second_deadlock_stack=1',
};

export function asan() {
  buildClang('build/asan', ['-DATTN_SANITIZE=address,undefined'], ['attn_core_tests']);
  run('build/asan/attn_core_tests', ['--gtest_brief=1'], { env: SAN_ENV });
}

export function tsan() {
  buildClang('build/tsan', ['-DATTN_SANITIZE=thread'], ['attn_core_tests']);
  // The whole suite: under TSan it takes about as long as under ASan (a minute here), and
  // every multi-threaded kernel's test runs on a pool.
  run('build/tsan/attn_core_tests', ['--gtest_brief=1'], { env: SAN_ENV });
}

// Runs each target for `seconds` from its committed seed corpus (read only: new inputs go to
// build/fuzz/corpus) and prints executions and coverage per target.
export function fuzz(seconds = 30, targets = FUZZ_TARGETS) {
  buildClang('build/fuzz', ['-DATTN_SANITIZE=address,undefined', '-DATTN_FUZZ=ON', '-DATTN_BUILD_TESTS=OFF'], targets);
  const rows = [];
  for (const target of targets) {
    const work = join(ROOT, 'build/fuzz/corpus', target);
    const artifacts = join(ROOT, 'build/fuzz/artifacts', target) + '/';
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    mkdirSync(artifacts, { recursive: true });
    const seeds = join(ROOT, 'tests/fuzz/corpus', target);
    const args = [`-max_total_time=${seconds}`, '-timeout=20', '-rss_limit_mb=2048', '-max_len=4096',
      '-print_final_stats=1', `-artifact_prefix=${artifacts}`, work];
    if (existsSync(seeds)) args.push(seeds);
    const result = spawnSync(join(ROOT, 'build/fuzz', target), args, {
      cwd: ROOT, env: SAN_ENV, encoding: 'utf8', maxBuffer: 256 << 20,
    });
    if (result.error) throw result.error;
    const log = result.stderr ?? '';
    const stat = (name) => Number((log.match(new RegExp(`stat::${name}:\\s*(\\d+)`)) ?? [])[1] ?? NaN);
    const progress = [...log.matchAll(/#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)/g)].pop();
    const row = {
      target, seconds: stat('average_exec_per_sec') > 0 ? Math.round(stat('number_of_executed_units') / stat('average_exec_per_sec')) : seconds,
      execs: stat('number_of_executed_units'), perSecond: stat('average_exec_per_sec'),
      cov: progress ? Number(progress[2]) : NaN, ft: progress ? Number(progress[3]) : NaN,
      seeds: existsSync(seeds) ? readdirSync(seeds).length : 0, status: result.status,
    };
    rows.push(row);
    if (result.status !== 0) {
      console.error(log.split('\n').slice(-60).join('\n'));
      console.error(`${target}: exit ${result.status ?? result.signal}; inputs in ${artifacts}`);
    }
  }
  console.log('\nfuzz target             seconds     execs  execs/s   cov    ft  seeds  result');
  for (const r of rows) {
    console.log(`${r.target.padEnd(22)}${String(r.seconds).padStart(8)}${String(r.execs).padStart(10)}` +
      `${String(r.perSecond).padStart(9)}${String(r.cov).padStart(6)}${String(r.ft).padStart(6)}` +
      `${String(r.seeds).padStart(7)}  ${r.status === 0 ? 'ok' : 'CRASH'}`);
  }
  const failed = rows.filter((r) => r.status !== 0).map((r) => r.target);
  if (failed.length > 0) throw new Error(`fuzz targets failed: ${failed.join(', ')}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [what, ...rest] = process.argv.slice(2);
  if (what === 'asan') asan();
  else if (what === 'tsan') tsan();
  else if (what === 'fuzz') fuzz(Number(rest[0] ?? 30), rest.length > 1 ? rest.slice(1) : FUZZ_TARGETS);
  else {
    console.error('usage: node scripts/sanitize.mjs asan | tsan | fuzz [seconds] [target...]');
    process.exit(2);
  }
}
