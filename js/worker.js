// The worker side of AttentionWorker (js/attention_worker.js): runs in a Web Worker (module
// type) or a Node worker_threads Worker, owns its own WebAssembly runtime and the objects
// made in it, and answers one message per request. A failed request is answered with the
// error's class, message and parameter; the worker and its objects stay usable.
import { IS_NODE, nodeImport } from './features.js';

// index.js initialises a default runtime on import in Node; this worker makes its own with
// the caller's options instead, so it asks index.js to skip that.
globalThis[Symbol.for('attnkit.worker')] = true;
const api = await import('./index.js');

const port = IS_NODE ? (await nodeImport('node:worker_threads')).parentPort : globalThis;
const objects = new Map();
let nextHandle = 1;

// Typed arrays in a result are copies made for this answer: move their memory, never copy it.
function collectTransfers(value, list, depth = 0) {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer && !list.includes(value.buffer)) list.push(value.buffer);
  } else if (value && typeof value === 'object' && depth < 4) {
    for (const item of Array.isArray(value) ? value : Object.values(value)) collectTransfers(item, list, depth + 1);
  }
  return list;
}

// Every public method a class's instances have, own and inherited.
function methodNames(object) {
  const names = new Set();
  for (let proto = Object.getPrototypeOf(object); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const desc = Object.getOwnPropertyDescriptor(proto, name);
      if (name !== 'constructor' && typeof desc.value === 'function') names.add(name);
    }
  }
  return [...names];
}

function objectFor(handle) {
  const object = objects.get(handle);
  if (!object) throw new Error('AttentionWorker: this remote object was disposed; create a new one');
  return object;
}

const OPS = {
  async init({ options }) {
    await api.init(options);
    return api.getRuntimeInfo();
  },
  construct({ className, options }) {
    if (!/^Wasm[A-Za-z]+$/.test(className) || typeof api[className] !== 'function') {
      throw new TypeError(`AttentionWorker.construct: className: expected the name of an attnkit class ` +
        `(${Object.keys(api).filter((k) => k.startsWith('Wasm')).join(', ')}), got ${JSON.stringify(className)}`);
    }
    const object = new api[className](options);
    const handle = nextHandle++;
    objects.set(handle, object);
    return { handle, methods: methodNames(object) };
  },
  call({ handle, method, args }) {
    const object = objectFor(handle);
    if (typeof object[method] !== 'function' || method === 'constructor') {
      throw new TypeError(`AttentionWorker.call: method: ${object.constructor.name} has no method ${JSON.stringify(method)}`);
    }
    const value = object[method](...args);
    // dispose() frees the C++ object; the handle goes with it.
    if (method === 'dispose') objects.delete(handle);
    return value;
  },
  get({ handle, property }) {
    return objectFor(handle)[property];
  },
  release({ handle }) {
    const object = objects.get(handle);
    objects.delete(handle);
    if (object && typeof object.dispose === 'function') object.dispose();
  },
  setNumThreads({ numThreads }) {
    api.setNumThreads(numThreads);
    return api.getRuntimeInfo();
  },
};

async function answer(message) {
  const { id, op } = message;
  try {
    const value = await OPS[op](message);
    port.postMessage({ id, ok: true, value }, collectTransfers(value, []));
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    port.postMessage({ id, ok: false, error: { name: error.name, message: error.message, param: error.param } });
  }
}

if (IS_NODE) port.on('message', answer);
else port.addEventListener('message', (event) => answer(event.data));
port.postMessage({ id: 0, ok: true, value: 'ready' });
