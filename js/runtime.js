// Loading the WebAssembly module: which variant, how many threads, and why.
// A Runtime is one instantiated module; the package keeps a default one (init()),
// and createRuntime() makes more (to compare variants side by side, for example).
import { raiseStatus, rangeError, typeError } from './errors.js';
import { IS_NODE, checkSIMDSupport, nodeImport, threadSupportProblem } from './features.js';
import { optionsObject, positiveInt, oneOf } from './validate.js';

const VARIANTS = {
  'simd-threads': {
    exportName: 'create_attnkit_simd_threads',
    glue: () => new URL('../dist/wasm/attnkit-simd-threads.js', import.meta.url),
    wasm: () => new URL('../dist/wasm/attnkit-simd-threads.wasm', import.meta.url),
    pthreadWorker: () => new URL('../dist/wasm/attnkit-simd-threads.worker.js', import.meta.url),
  },
  simd: {
    exportName: 'create_attnkit_simd',
    glue: () => new URL('../dist/wasm/attnkit-simd.js', import.meta.url),
    wasm: () => new URL('../dist/wasm/attnkit-simd.wasm', import.meta.url),
  },
};
const MAX_THREADS = 64;

async function defaultThreadCount() {
  if (IS_NODE) {
    const os = await nodeImport('node:os');
    return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  }
  return (globalThis.navigator && navigator.hardwareConcurrency) || 4;
}

// Picks the variant: the threaded one when the engine allows it and more than one
// thread is wanted; the reason is reported to the user in getRuntimeInfo().
function chooseVariant(requested, numThreads) {
  const problem = threadSupportProblem();
  if (requested === 'simd-threads') {
    if (problem) throw new Error(`init: variant "simd-threads" cannot run here: ${problem}`);
    return { variant: requested, reason: 'requested by the caller' };
  }
  if (requested === 'simd') return { variant: requested, reason: 'requested by the caller' };
  if (problem) return { variant: 'simd', reason: `single-threaded: ${problem}` };
  if (numThreads === 1) return { variant: 'simd', reason: 'one thread was requested' };
  return { variant: 'simd-threads', reason: `threads available: using ${numThreads}` };
}

async function loadNodeFactory(spec, wasmUrl) {
  const { createRequire } = await nodeImport('node:module');
  const { readFile } = await nodeImport('node:fs/promises');
  const { fileURLToPath } = await nodeImport('node:url');
  const path = await nodeImport('node:path');
  const require = createRequire(import.meta.url);
  const gluePath = fileURLToPath(spec.glue());
  const wasmPath = wasmUrl ? (String(wasmUrl).startsWith('file:') ? fileURLToPath(wasmUrl) : String(wasmUrl))
    : fileURLToPath(spec.wasm());
  const factory = require(gluePath);
  // Emscripten 3.1.6 would fetch() a file path under Node >= 18; hand it the bytes.
  const wasmBinary = await readFile(wasmPath);
  const dir = path.dirname(gluePath);
  return (extra) => factory({
    wasmBinary,
    mainScriptUrlOrBlob: gluePath,
    locateFile: (file) => path.join(dir, file),
    ...extra,
  });
}

async function loadBrowserFactory(spec, wasmUrl) {
  const glueUrl = spec.glue().href;
  const response = await fetch(glueUrl);
  if (!response.ok) throw new Error(`init: cannot load ${glueUrl} (HTTP ${response.status})`);
  // The glue is a classic script; evaluating it in a function scope returns its factory
  // without touching globals. Its pthread workers importScripts() the same URL.
  const factory = new Function(`${await response.text()}\nreturn ${spec.exportName};`)();
  const wasmHref = wasmUrl ? new URL(String(wasmUrl), globalThis.location?.href).href : spec.wasm().href;
  // Emscripten starts its pthreads from the file named `<glue>.worker.js` next to the glue,
  // which a bundler renames (hashes) or inlines as a data: URL (it is 3 KB), where a worker
  // could not importScripts() the glue. A same-origin blob of the script works in every case.
  let pthreadHref = '';
  if (spec.pthreadWorker) {
    const workerUrl = spec.pthreadWorker().href;
    const workerResponse = await fetch(workerUrl);
    if (!workerResponse.ok) throw new Error(`init: cannot load ${workerUrl} (HTTP ${workerResponse.status})`);
    pthreadHref = URL.createObjectURL(new Blob([await workerResponse.text()], { type: 'text/javascript' }));
  }
  return (extra) => factory({
    mainScriptUrlOrBlob: glueUrl,
    locateFile: (file) => (file.endsWith('.wasm') ? wasmHref : file.endsWith('.worker.js') ? pthreadHref : new URL(file, glueUrl).href),
    ...extra,
  });
}

// V8 first runs WebAssembly through its baseline compiler and optimises a function only
// after it has run for a while, in the background. One small forward call at start-up
// (about a millisecond) spends that budget on the hot kernels, so the user's first call
// runs optimised code instead of paying for the tier-up itself.
function warmUp(module) {
  const seq = 128, heads = 2, dim = 64, floats = seq * heads * dim;
  const ptr = module._malloc(floats * 4 * 2);
  if (!ptr) return;
  try {
    module.heapF32().fill(0.5, ptr >>> 2, (ptr >>> 2) + floats);
    const call = {
      batch: 1, seqQ: seq, seqK: seq, headsQ: heads, headsKv: heads, headDim: dim, valueDim: dim,
      scale: NaN, softcap: 0, dropout: 0, seed: 0, causal: 0, blockQ: 0, blockK: 0,
      maskKind: 0, maskBatchStride: 0, maskHeadStride: 0, maskRowStride: seq,
      q: ptr, k: ptr, v: ptr, out: ptr + floats * 4, lse: 0, mask: 0,
    };
    module.flashForward(call);
  } finally {
    module._free(ptr);
  }
}

export class Runtime {
  constructor(module, variant, maxThreads, reason) {
    this.module = module;
    this.variant = variant;
    this.maxThreads = maxThreads;
    this.reason = reason;
  }

  get threads() {
    return this.module.numThreads();
  }

  setNumThreads(n) {
    positiveInt('setNumThreads', 'numThreads', n);
    if (n > this.maxThreads) {
      throw rangeError('setNumThreads', 'numThreads',
        `this runtime (${this.variant}) was started with at most ${this.maxThreads} thread(s); got ${n}`);
    }
    raiseStatus(this.module.setNumThreads(n), 'setNumThreads');
  }

  info() {
    return {
      variant: this.variant,
      simd: true,
      simdBackend: this.module.simdBackend(),
      threads: this.threads,
      maxThreads: this.maxThreads,
      reason: this.reason,
    };
  }
}

// Options: { wasmUrl?, numThreads?, variant?: 'auto' | 'simd-threads' | 'simd' }.
export async function createRuntime(options) {
  if (typeof options === 'string' || options instanceof URL) options = { wasmUrl: options };
  const opts = optionsObject('init', options);
  const requested = oneOf('init', 'variant', opts.variant, ['auto', 'simd-threads', 'simd'], 'auto');
  if (opts.wasmUrl !== undefined && typeof opts.wasmUrl !== 'string' && !(opts.wasmUrl instanceof URL)) {
    throw typeError('init', 'wasmUrl', 'expected a string or URL');
  }
  let numThreads = positiveInt('init', 'numThreads', opts.numThreads, await defaultThreadCount());
  numThreads = Math.min(numThreads, MAX_THREADS);
  if (!checkSIMDSupport()) {
    throw new Error('init: this JavaScript engine lacks WebAssembly SIMD128, which attnkit requires ' +
      '(Chrome 91+, Firefox 89+, Safari 16.4+, Node 16.4+)');
  }
  const { variant, reason } = chooseVariant(requested, numThreads);
  const threads = variant === 'simd' ? 1 : numThreads;
  const spec = VARIANTS[variant];
  const makeModule = IS_NODE ? await loadNodeFactory(spec, opts.wasmUrl) : await loadBrowserFactory(spec, opts.wasmUrl);
  // A threaded module with an empty worker pool never signals ready (emcc 3.1.6), so it
  // always gets at least one worker.
  const module = await makeModule({ attnPoolSize: Math.max(1, threads - 1) });
  raiseStatus(module.setNumThreads(threads), 'init');
  if (IS_NODE) module.unrefWorkers();
  warmUp(module);
  return new Runtime(module, variant, threads, reason);
}

let defaultRuntime = null;
let defaultPromise = null;
let defaultRequest = null;

function sameRequest(a, b) {
  return a.variant === b.variant && a.numThreads === b.numThreads && String(a.wasmUrl) === String(b.wasmUrl);
}

// Initialises the default runtime. Without options it is done once (in Node, the import
// already did it). With options that differ from the current runtime's, a new runtime
// replaces the default; objects made earlier keep the runtime they were made with.
export async function init(options) {
  if (typeof options === 'string' || options instanceof URL) options = { wasmUrl: options };
  const opts = optionsObject('init', options);
  const request = {
    variant: oneOf('init', 'variant', opts.variant, ['auto', 'simd-threads', 'simd'], 'auto'),
    numThreads: opts.numThreads === undefined ? undefined : positiveInt('init', 'numThreads', opts.numThreads),
    wasmUrl: opts.wasmUrl,
  };
  const reuse = defaultPromise && (options === undefined || sameRequest(request, defaultRequest));
  if (!reuse) {
    defaultRequest = request;
    defaultPromise = createRuntime(options).then((rt) => {
      defaultRuntime = rt;
      return rt;
    }, (err) => {
      defaultPromise = null;
      defaultRequest = null;
      throw err;
    });
  }
  return defaultPromise.then(() => undefined);
}

// A class's `runtime` option: a Runtime from createRuntime(), or the default runtime when
// undefined; anything else is a TypeError naming `runtime`.
export function runtimeOption(where, value) {
  if (value === undefined) return currentRuntime(where);
  if (!(value instanceof Runtime)) throw typeError(where, 'runtime', 'expected a runtime from createRuntime()');
  return value;
}

export function currentRuntime(where) {
  if (!defaultRuntime) {
    throw new Error(`${where}: the WebAssembly module is not initialised: await init() first`);
  }
  return defaultRuntime;
}

export function getRuntimeInfo() {
  return currentRuntime('getRuntimeInfo').info();
}

export function setNumThreads(n) {
  currentRuntime('setNumThreads').setNumThreads(n);
}
