// The C++ objects behind the classes (embind handles): adopt() ties one to its JS owner so
// that a FinalizationRegistry frees it if the owner is dropped without dispose();
// release() frees it now (dispose). Every class keeps its handle in a private field.
import { raiseStatus } from './errors.js';

const forgotten = new FinalizationRegistry((handle) => {
  try {
    handle.delete();
  } catch {
    // the runtime itself is gone
  }
});

// Makes the C++ object through the bindings' guarded factory module[`make${className}`]
// (bindings/error_translation.h): null and a status when construction threw (a failed
// allocation, say), raised here as the typed error; else the handle, adopted by `owner`.
export function construct(owner, module, className, init, where) {
  const handle = module[`make${className}`](init);
  const status = module.takeConstructionStatus();
  if (handle === null || status !== '') {
    handle?.delete();
    raiseStatus(status || `Error\x1finternal\x1fthe ${className} could not be made`, where);
  }
  return adopt(owner, handle);
}

export function adopt(owner, handle) {
  forgotten.register(owner, handle, owner);
  return handle;
}

// Frees the handle (null: already released); returns null for the owner to keep.
export function release(owner, handle) {
  if (handle === null) return null;
  forgotten.unregister(owner);
  handle.delete();
  return null;
}

// The error of a method called after dispose().
export function disposedError(where, method) {
  return new Error(`${where}.${method}: this object was disposed; create a new one`);
}
