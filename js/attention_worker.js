// AttentionWorker: the library's classes run in a worker (a Web Worker in browsers, a
// worker_threads Worker in Node) so that a long forward call never blocks the page or the
// event loop. Each worker has its own WebAssembly runtime (threads included); objects made
// in it are used through promises:
//   const worker = await AttentionWorker.create({ numThreads: 4 });
//   const attn = await worker.construct('WasmFlashAttention', { heads: 8, dim: 64 });
//   const out = await attn.forward(transfer(Q), transfer(K), transfer(V));
//   worker.dispose();
// Arguments are copied (structured clone) unless wrapped in transfer(), which moves their
// memory instead (the caller's array is then detached); results always arrive moved.
import { IS_NODE, nodeImport } from './features.js';
import { typeError } from './errors.js';
import { optionsObject } from './validate.js';

const WHERE = 'AttentionWorker';
const ERROR_CLASSES = { TypeError, RangeError, Error };
const WORKER_FILE = './worker.js';

class Transfer {
  constructor(value) {
    this.value = value;
  }
}

// Marks a typed array (or ArrayBuffer) to be moved to the worker instead of copied.
export function transfer(value) {
  if (!ArrayBuffer.isView(value) && !(value instanceof ArrayBuffer)) {
    throw typeError('transfer', 'value', 'expected a typed array or an ArrayBuffer');
  }
  return new Transfer(value);
}

// Replaces transfer() marks by their values and lists the buffers to move. A buffer that is
// shared (SharedArrayBuffer) cannot be moved and needs no copy: it is passed as is.
function unwrap(value, list, depth = 0) {
  if (value instanceof Transfer) {
    const buffer = ArrayBuffer.isView(value.value) ? value.value.buffer : value.value;
    if (buffer instanceof ArrayBuffer && !list.includes(buffer)) list.push(buffer);
    return value.value;
  }
  if (depth < 4 && Array.isArray(value)) return value.map((item) => unwrap(item, list, depth + 1));
  if (depth < 4 && value && Object.getPrototypeOf(value) === Object.prototype) {
    const out = {};
    for (const [key, item] of Object.entries(value)) out[key] = unwrap(item, list, depth + 1);
    return out;
  }
  return value;
}

function rebuildError(data) {
  const error = new (ERROR_CLASSES[data.name] || Error)(data.message);
  if (data.param !== undefined) error.param = data.param;
  return error;
}

async function spawn() {
  if (IS_NODE) {
    const { Worker } = await nodeImport('node:worker_threads');
    // A worker inherits the process's flags; --input-type (a script run with -e) is refused
    // for a worker started from a file, so it is left out.
    const execArgv = process.execArgv.filter((arg, i, all) => !arg.startsWith('--input-type') && all[i - 1] !== '--input-type');
    // Spelt so that bundlers, which look for `new URL('literal', import.meta.url)`, see only
    // the browser's worker below.
    const here = import.meta.url;
    const worker = new Worker(new URL(WORKER_FILE, here), { execArgv });
    return {
      post: (message, list) => worker.postMessage(message, list),
      listen: (onMessage, onFailure) => {
        worker.on('message', onMessage);
        worker.on('error', onFailure);
        worker.on('exit', (code) => onFailure(new Error(`${WHERE}: the worker exited (code ${code})`)));
      },
      // An idle worker must not keep Node running; one with calls in flight must.
      hold: (busy) => (busy ? worker.ref() : worker.unref()),
      terminate: () => worker.terminate(),
    };
  }
  // This exact spelling, `new Worker(new URL('./worker.js', import.meta.url), ...)`, is what
  // Vite and webpack recognise and bundle as a worker entry.
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  return {
    post: (message, list) => worker.postMessage(message, list),
    listen: (onMessage, onFailure) => {
      worker.addEventListener('message', (event) => onMessage(event.data));
      worker.addEventListener('error', (event) => {
        event.preventDefault();
        onFailure(new Error(`${WHERE}: the worker failed: ${event.message || 'it could not load (see the console)'}`));
      });
    },
    hold: () => {},
    terminate: () => worker.terminate(),
  };
}

// An object that lives in the worker: its methods return promises. Property reads go
// through get(name); dispose() frees it in the worker.
class RemoteObject {
  #worker;
  #handle;

  constructor(worker, handle, className, methods) {
    this.#worker = worker;
    this.#handle = handle;
    Object.defineProperty(this, 'className', { value: className, enumerable: true });
    for (const method of methods) {
      Object.defineProperty(this, method, {
        value: (...args) => this.#worker._request({ op: 'call', handle: this.#handle, method, args }),
      });
    }
  }

  get(property) {
    if (typeof property !== 'string') throw typeError(`${WHERE}.get`, 'property', 'expected a string');
    return this.#worker._request({ op: 'get', handle: this.#handle, property });
  }
}

export class AttentionWorker {
  #channel;
  #pending = new Map();
  #nextId = 1;
  #failure = null;
  #info = null;

  constructor(token) {
    if (token !== spawn) throw new TypeError(`${WHERE}: use await AttentionWorker.create(options)`);
  }

  // Options: init()'s ({ numThreads, variant, wasmUrl }), applied in the worker.
  static async create(options) {
    const opts = { ...optionsObject(`${WHERE}.create`, options) };
    // A URL object cannot be posted to a worker; its text can.
    if (opts.wasmUrl instanceof URL) opts.wasmUrl = opts.wasmUrl.href;
    const self = new AttentionWorker(spawn);
    await self.#start(await spawn());
    try {
      self.#info = await self._request({ op: 'init', options: opts });
    } catch (err) {
      self.dispose();
      throw err;
    }
    return self;
  }

  #start(channel) {
    this.#channel = channel;
    return new Promise((resolve, reject) => {
      this.#pending.set(0, { resolve, reject });
      channel.hold(true);
      channel.listen((message) => this.#settle(message), (err) => this.#fail(err));
    });
  }

  #settle({ id, ok, value, error }) {
    const call = this.#pending.get(id);
    if (!call) return;
    this.#pending.delete(id);
    this.#channel.hold(this.#pending.size > 0);
    if (ok) call.resolve(value);
    else call.reject(rebuildError(error));
  }

  // The worker died (or was disposed): every call in flight and every later one rejects.
  #fail(err) {
    if (!this.#failure) this.#failure = err;
    for (const call of this.#pending.values()) call.reject(this.#failure);
    this.#pending.clear();
  }

  _request(message) {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const list = [];
    const payload = { ...message, id };
    if (payload.args) payload.args = unwrap(payload.args, list);
    if (payload.options) payload.options = unwrap(payload.options, list);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#channel.hold(true);
      try {
        this.#channel.post(payload, list);
      } catch (err) {
        // Not cloneable (a function, a runtime object, ...): the call never left.
        this.#pending.delete(id);
        this.#channel.hold(this.#pending.size > 0);
        reject(typeError(WHERE, 'arguments', `cannot be sent to the worker: ${err.message}`));
      }
    });
  }

  /** The worker's runtime: variant, threads and the reason they were chosen. */
  get info() {
    return this.#info;
  }

  /** Makes an object of an attnkit class (by name) in the worker. */
  async construct(className, options) {
    if (typeof className !== 'string') throw typeError(`${WHERE}.construct`, 'className', 'expected a class name string');
    if (options && typeof options === 'object' && options.runtime !== undefined) {
      throw typeError(`${WHERE}.construct`, 'runtime', 'objects in a worker use the worker\'s runtime; leave it out');
    }
    const { handle, methods } = await this._request({ op: 'construct', className, options });
    return new RemoteObject(this, handle, className, methods);
  }

  async setNumThreads(numThreads) {
    this.#info = await this._request({ op: 'setNumThreads', numThreads });
  }

  /** Terminates the worker; calls in flight reject. Safe to call twice. */
  dispose() {
    if (this.#channel && !this.#failure) {
      this.#fail(new Error(`${WHERE}: this worker was disposed; create a new one`));
      this.#channel.terminate();
    }
  }
}
