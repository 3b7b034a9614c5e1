// WasmASAMLayer, WasmASAMEncoder and WasmHybridASAM: the seed's ASAMLayer, ASAMEncoder and
// HybridASAM on the core's src/asam (projections on the SIMD GEMM, block-sparse attention
// under the pattern, the adaptive gate's routing). x is [batch][seq][dim]; inference only (dropout
// is accepted and not applied). The weights live in the WebAssembly heap inside a C++
// object: dispose() frees them, and a FinalizationRegistry frees those never disposed.
import { raiseStatus, rangeError, typeError } from './errors.js';
import { withHeap } from './heap.js';
import { runtimeOption } from './runtime.js';
import { construct, disposedError, release } from './handle.js';
import { loadBinary, loadNamed, saveBinary } from './weights.js';
import { probeValues, quantizeWith, weightPrecision } from './quantization.js';
import {
  boolean, finiteNumber, float32Array, nonNegativeInt, oneOf, optionsObject, outputArray, positiveInt, rowCount,
  seedValue,
} from './validate.js';

const PATTERN_TYPES = ['local', 'strided', 'random', 'clustered', 'hierarchical', 'adaptive'];

// The configuration in the seed's fields (camelCase), with the seed's defaults.
function readConfig(where, opts) {
  return {
    dim: positiveInt(where, 'dim', opts.dim, 512),
    numHeads: positiveInt(where, 'numHeads', opts.numHeads, 8),
    dimHead: nonNegativeInt(where, 'dimHead', opts.dimHead, 0),
    dropout: finiteNumber(where, 'dropout', opts.dropout, 0.1, { min: 0, max: 1, maxExclusive: true }),
    patternType: oneOf(where, 'patternType', opts.patternType, PATTERN_TYPES, 'hierarchical'),
    windowSize: positiveInt(where, 'windowSize', opts.windowSize, 128),
    stride: positiveInt(where, 'stride', opts.stride, 32),
    numClusters: positiveInt(where, 'numClusters', opts.numClusters, 32),
    useAdaptiveGate: boolean(where, 'useAdaptiveGate', opts.useAdaptiveGate, true),
    gateHiddenDim: positiveInt(where, 'gateHiddenDim', opts.gateHiddenDim, 128),
    confidenceThreshold: finiteNumber(where, 'confidenceThreshold', opts.confidenceThreshold, 0.5, { min: 0, max: 1 }),
    blockSize: positiveInt(where, 'blockSize', opts.blockSize, 64),
    seed: seedValue(where, opts.seed, 0),
  };
}

// One forward of a layer handle on x [batch][seq][dim]: options { batch, returnInfo, out,
// mask (refused: `maskReason`) }; readInfo() runs after the call when returnInfo is set.
function forwardLayer(where, module, handle, dim, x, options, maskReason, readInfo) {
  const opts = optionsObject(where, options);
  const input = float32Array(where, 'x', x);
  const batch = positiveInt(where, 'batch', opts.batch, 1);
  if (opts.mask !== undefined && opts.mask !== null) throw typeError(where, 'mask', `is not supported: ${maskReason}`);
  const returnInfo = boolean(where, 'returnInfo', opts.returnInfo, false);
  const seq = rowCount(where, 'x', input, batch * dim, 'batch * dim');
  const out = outputArray(where, 'out', opts.out, batch * seq * dim, `batch * seq * dim = ${batch} * ${seq} * ${dim}`);
  return withHeap(module, where, (heap) => {
    const call = { batch, seq, wantInfo: returnInfo, x: heap.copyIn(input, 'x'), out: heap.alloc(input.byteLength, 'the output') };
    raiseStatus(handle.forward(call), where);
    const output = heap.readF32(call.out, batch * seq * dim, out);
    return { output, info: returnInfo ? readInfo() : null };
  });
}

// quantizeWeights(precision, { probe }) of a layer handle whose input is x [seq][dim]:
// probe is x (batch 1), by default 128 random rows.
function quantizeLayer(where, handle, dim, precision, options, forward) {
  const p = weightPrecision(where, 'precision', precision);
  const opts = optionsObject(where, options);
  const probe = opts.probe === undefined ? probeValues(128 * dim, 1) : opts.probe;
  if (!(probe instanceof Float32Array)) throw typeError(where, 'probe', 'expected a Float32Array x [seq][dim]');
  rowCount(where, 'probe', probe, dim, 'dim');
  return quantizeWith(where, handle, p, opts.probe === undefined ? 'random' : 'given', () => forward(probe));
}

// "name:count,..." from a handle -> { name: count }.
function parseSizes(text) {
  return Object.fromEntries(text.split(',').map((entry) => {
    const at = entry.lastIndexOf(':');
    return [entry.slice(0, at), Number(entry.slice(at + 1))];
  }));
}

// The info of one layer, copied out of the handle: camelCase, typed arrays of this call.
function copyInfo(raw) {
  return {
    gateValues: new Float32Array(raw.gateValues),
    confidence: new Float32Array(raw.confidence),
    patternLogits: new Float32Array(raw.patternLogits),
    patterns: raw.patterns,
    mixedHeads: new Uint8Array(raw.mixed),
    sparseRatio: raw.sparseRatio,
    visitedBlocks: raw.visitedBlocks,
    denseBlocks: raw.denseBlocks,
    computedScores: raw.computedScores,
    denseScores: raw.denseScores,
    densePathScores: raw.densePathScores,
  };
}

class ASAMBase {
  #runtime;
  #config;
  #handle;
  #where;
  #layers;
  #quantization = null;

  constructor(where, options, numLayers) {
    this.#where = where;
    const opts = optionsObject(where, options);
    this.#config = Object.freeze(readConfig(where, opts));
    this.#layers = numLayers;
    this.#runtime = runtimeOption(where, opts.runtime);
    const init = { ...this.#config, numLayers };
    raiseStatus(this.#runtime.module.validateASAM(init), where);
    this.#handle = construct(this, this.#runtime.module, 'ASAMHandle', init, where);
  }

  get config() { return this.#config; }

  #live(method) {
    if (this.#handle === null) throw disposedError(this.#where, method);
    return this.#runtime.module;
  }

  // x [batch][seq][dim] -> { output [batch][seq][dim], infos (one per layer, when asked) }.
  run(method, x, options) {
    const module = this.#live(method);
    const handle = this.#handle;
    const { output, info } = forwardLayer(`${this.#where}.${method}`, module, handle, this.#config.dim, x, options,
      'the sparse pattern is the attention mask',
      () => Array.from({ length: handle.infoCount() }, (_, i) => copyInfo(handle.info(i))));
    return { output, infos: info };
  }

  // The weights of layer `layer` (0 for a single layer) in attnkit's versioned, checksummed
  // binary format.
  saveWeightsOf(method, layer) {
    const module = this.#live(method);
    return saveBinary(`${this.#where}.${method}`, module, this.#handle.savedBytes(layer),
      (ptr, bytes) => this.#handle.saveInto(layer, ptr, bytes));
  }

  // A Uint8Array from saveWeights(), or every named Float32Array (q_proj.weight, ...,
  // centroids, gate.*). On any error the old weights stay.
  loadWeightsOf(method, layer, weights) {
    const where = `${this.#where}.${method}`;
    const module = this.#live(method);
    if (weights instanceof Uint8Array) return loadBinary(where, module, weights, (ptr, n) => this.#handle.load(layer, ptr, n));
    return loadNamed(where, module, this.#handle, weights, Object.keys(this.parameterSizes()), 'this layer',
      () => this.#handle.commitNamed(layer));
  }

  // { name: number of floats } of each weight of a layer (all layers of an encoder alike).
  parameterSizes() {
    this.#live('parameterSizes');
    return parseSizes(this.#handle.parameterSizes());
  }

  // Stores the projections' weights (every layer's) as 'int8', 'fp16' or 'fp32' in place;
  // the gate and centroids stay float32. Returns { precision, previousPrecision,
  // weightBytesBefore, weightBytesAfter, outputError: { relative, maxAbs, ... } }: the
  // bytes measured in the heap object, the error against the model before this call on
  // `probe` (x [seq][dim], batch 1; default 128 random rows). saveWeights() then writes
  // the weights in use as float32, which quantize back to the same layer.
  quantizeWeights(precision = 'int8', options) {
    const where = `${this.#where}.quantizeWeights`;
    const module = this.#live('quantizeWeights');
    this.#quantization = quantizeLayer(where, this.#handle, this.#config.dim, precision, options,
      (x) => forwardLayer(`${where}: probe`, module, this.#handle, this.#config.dim, x, {}, '', null).output);
    return this.#quantization;
  }

  // weightBytes: the projections' weights and biases as held now (the part quantizeWeights
  // changes); quantization: the last quantizeWeights() report (null before).
  getMemoryUsage() {
    const module = this.#live('getMemoryUsage');
    return {
      heapUsed: module.heapUsed(), heapTotal: module.heapU8().byteLength, paramCount: this.#handle.paramCount(),
      weightPrecision: this.#handle.precision(), weightBytes: this.#handle.weightBytes(), quantization: this.#quantization,
    };
  }

  dispose() {
    this.#handle = release(this, this.#handle);
  }

  get disposed() {
    return this.#handle === null;
  }
}

export class WasmASAMLayer extends ASAMBase {
  constructor(options) {
    super('WasmASAMLayer', options, 0);
  }

  // forward(x, { batch = 1, returnInfo = false, out }) -> output, or { output, info } with
  // returnInfo: info = { gateValues [batch][heads][seq], confidence [batch][heads],
  // patternLogits [batch][4] (local, strided, clustered, hierarchical), patterns (per batch
  // element), mixedHeads [batch][heads], sparseRatio, visitedBlocks, ... }.
  forward(x, options) {
    const { output, infos } = this.run('forward', x, options);
    return infos ? { output, info: infos[0] } : output;
  }

  saveWeights() { return this.saveWeightsOf('saveWeights', 0); }
  loadWeights(weights) { return this.loadWeightsOf('loadWeights', 0, weights); }
}

export class WasmASAMEncoder extends ASAMBase {
  #numLayers;

  // options: the layer's options plus numLayers (default 6).
  constructor(options) {
    const opts = optionsObject('WasmASAMEncoder', options);
    const numLayers = positiveInt('WasmASAMEncoder', 'numLayers', opts.numLayers, 6);
    super('WasmASAMEncoder', opts, numLayers);
    this.#numLayers = numLayers;
  }

  get numLayers() { return this.#numLayers; }

  // forward(x, { batch, returnInfo, out }) -> output, or { output, infos } (one per layer).
  forward(x, options) {
    const { output, infos } = this.run('forward', x, options);
    return infos ? { output, infos } : output;
  }

  #layerIndex(where, layer) {
    // A disposed encoder says so whatever the layer (as every method of every class does).
    if (this.disposed) throw disposedError('WasmASAMEncoder', where.split('.')[1]);
    const i = nonNegativeInt(where, 'layer', layer, 0);
    if (i >= this.#numLayers) throw rangeError(where, 'layer', `must be below numLayers (${this.#numLayers}), got ${i}`);
    return i;
  }

  saveWeights(layer) { return this.saveWeightsOf('saveWeights', this.#layerIndex('WasmASAMEncoder.saveWeights', layer)); }
  loadWeights(layer, weights) {
    return this.loadWeightsOf('loadWeights', this.#layerIndex('WasmASAMEncoder.loadWeights', layer), weights);
  }
}

// HybridASAM: a sliding window of localWindowSize plus numGlobalTokens global tokens (they
// attend to, and are attended by, every token), with the layer's projections; one softmax
// over exactly those keys (src/asam/hybrid_asam.h). Named weights only (no binary format).
export class WasmHybridASAM {
  #runtime;
  #config;
  #handle;
  #quantization = null;

  constructor(options) {
    const where = 'WasmHybridASAM';
    const opts = optionsObject(where, options);
    this.#config = Object.freeze({
      ...readConfig(where, opts),
      localWindowSize: positiveInt(where, 'localWindowSize', opts.localWindowSize, 512),
      numGlobalTokens: nonNegativeInt(where, 'numGlobalTokens', opts.numGlobalTokens, 1),
    });
    this.#runtime = runtimeOption(where, opts.runtime);
    const { localWindowSize, numGlobalTokens, ...layer } = this.#config;
    const init = { layer: { ...layer, numLayers: 0 }, localWindowSize, numGlobalTokens };
    raiseStatus(this.#runtime.module.validateHybridASAM(init), where);
    this.#handle = construct(this, this.#runtime.module, 'HybridASAMHandle', init, where);
  }

  get config() { return this.#config; }

  #live(method) {
    if (this.#handle === null) throw disposedError('WasmHybridASAM', method);
    return this.#runtime.module;
  }

  // forward(x [batch][seq][dim], { batch, returnInfo, out }) -> output, or { output, info }
  // with info = { sparseRatio, visitedBlocks, denseBlocks, computedScores, denseScores,
  // globalScores } (sparseRatio counts every score computed, the global parts' included).
  forward(x, options) {
    const module = this.#live('forward');
    const handle = this.#handle;
    const { output, info } = forwardLayer('WasmHybridASAM.forward', module, handle, this.#config.dim, x, options,
      'the window and the global tokens are the attention mask', () => ({ ...handle.info() }));
    return info ? { output, info } : output;
  }

  // Every named Float32Array (q_proj.weight, q_proj.bias, ..., out_proj.bias); on any error
  // the old weights stay.
  loadWeights(weights) {
    const where = 'WasmHybridASAM.loadWeights';
    const module = this.#live('loadWeights');
    if (weights instanceof Uint8Array) throw typeError(where, 'weights', 'expected an object of named Float32Arrays');
    return loadNamed(where, module, this.#handle, weights, Object.keys(this.parameterSizes()), 'this layer',
      () => this.#handle.commitNamed());
  }

  parameterSizes() {
    this.#live('parameterSizes');
    return parseSizes(this.#handle.parameterSizes());
  }

  // As WasmASAMLayer's.
  quantizeWeights(precision = 'int8', options) {
    const where = 'WasmHybridASAM.quantizeWeights';
    const module = this.#live('quantizeWeights');
    this.#quantization = quantizeLayer(where, this.#handle, this.#config.dim, precision, options,
      (x) => forwardLayer(`${where}: probe`, module, this.#handle, this.#config.dim, x, {}, '', null).output);
    return this.#quantization;
  }

  getMemoryUsage() {
    const module = this.#live('getMemoryUsage');
    return {
      heapUsed: module.heapUsed(), heapTotal: module.heapU8().byteLength, weightPrecision: this.#handle.precision(),
      weightBytes: this.#handle.weightBytes(), quantization: this.#quantization,
    };
  }

  dispose() {
    this.#handle = release(this, this.#handle);
  }

  get disposed() {
    return this.#handle === null;
  }
}
