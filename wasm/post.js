// Appended inside the Emscripten module factory, where the runtime's internals are
// in scope. Gives js/ the two things the public Module object lacks in emcc 3.1.6.

// Heap views that are current even after memory grew on another thread.
Module['heapF32'] = function () {
  if (HEAPF32.buffer !== wasmMemory.buffer) updateGlobalBufferAndViews(wasmMemory.buffer);
  return HEAPF32;
};
Module['heapU8'] = function () {
  if (HEAPU8.buffer !== wasmMemory.buffer) updateGlobalBufferAndViews(wasmMemory.buffer);
  return HEAPU8;
};

// In Node, pthread workers would keep the process alive after the user's script ends;
// unref them so a library import never holds the event loop open.
Module['unrefWorkers'] = function () {
  if (typeof PThread === 'undefined') return;
  PThread.unusedWorkers.concat(PThread.runningWorkers).forEach(function (w) {
    if (w && typeof w.unref === 'function') w.unref();
  });
};
