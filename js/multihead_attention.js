// WasmMultiHeadAttention: PyTorch nn.MultiheadAttention (batch first) on the core's
// MultiHeadAttention (src/multihead): projections on the SIMD GEMM, heads on the flash
// kernel. The weights live in the WebAssembly heap inside a C++ object: dispose() frees
// them, and a FinalizationRegistry frees those of objects that were never disposed.
import { raiseStatus, rangeError, typeError } from './errors.js';
import { withHeap } from './heap.js';
import { MASK_LAYOUTS, checkMask, maskStrides } from './mask_layout.js';
import { construct, disposedError, release } from './handle.js';
import { DropoutLayer } from './dropout_layer.js';
import { loadMultiHeadWeights, saveHandleWeights } from './weights.js';
import { probeValues, quantizeWith, weightPrecision } from './quantization.js';
import { runtimeOption } from './runtime.js';
import { boolean, finiteNumber, float32Array, oneOf, optionsObject, positiveInt, rowCount, seedValue } from './validate.js';

const WHERE = 'WasmMultiHeadAttention';

export class WasmMultiHeadAttention extends DropoutLayer {
  #runtime;
  #config;
  #handle;
  #where;
  #quantization = null;

  constructor(options, where = WHERE) {
    super(where, (method) => {
      this.#live(method);
      return this.#handle;
    });
    this.#where = where;
    const opts = optionsObject(where, options);
    const modelDim = positiveInt(where, 'modelDim', opts.modelDim);
    const config = {
      modelDim,
      heads: positiveInt(where, 'heads', opts.heads, 8),
      kdim: positiveInt(where, 'kdim', opts.kdim, modelDim),
      vdim: positiveInt(where, 'vdim', opts.vdim, modelDim),
      bias: boolean(where, 'bias', opts.bias, true),
      dropout: finiteNumber(where, 'dropout', opts.dropout, 0, { min: 0, max: 1, maxExclusive: true }),
      seed: seedValue(where, opts.seed, 0),
      causal: boolean(where, 'causal', opts.causal, false),
    };
    const training = boolean(where, 'training', opts.training, false);
    if (modelDim % config.heads !== 0) {
      throw rangeError(where, 'heads', `must divide modelDim (${modelDim}), got ${config.heads}`);
    }
    this.#config = Object.freeze(config);
    this.#runtime = runtimeOption(where, opts.runtime);
    const module = this.#runtime.module;
    const init = { modelDim, heads: config.heads, kdim: config.kdim, vdim: config.vdim, bias: config.bias,
      dropout: config.dropout, seed: config.seed };
    raiseStatus(module.validateMultiHead(init), where);
    this.#handle = construct(this, module, 'MultiHeadHandle', init, where);
    this.#handle.setTraining(training);
  }

  get modelDim() { return this.#config.modelDim; }
  get heads() { return this.#config.heads; }
  get headDim() { return this.#config.modelDim / this.#config.heads; }
  get kdim() { return this.#config.kdim; }
  get vdim() { return this.#config.vdim; }
  get bias() { return this.#config.bias; }
  get dropout() { return this.#config.dropout; }
  get seed() { return this.#config.seed; }
  get causal() { return this.#config.causal; }

  #live(method) {
    if (this.#handle === null) throw disposedError(this.#where, method);
    return this.#runtime.module;
  }

  // query [seqQ][modelDim], key [seqK][kdim], value [seqK][vdim] -> [seqQ][modelDim].
  // mask: [seqQ][seqK] or [heads][seqQ][seqK], additive Float32Array or boolean Uint8Array.
  forward(query, key, value, mask) {
    return this.#run('forward', { query, key, value, mask }).output;
  }

  // { query, key, value, batch?, mask?, maskLayout?, causal? } with a leading batch dimension.
  forwardExtended(inputs) {
    return this.#run('forwardExtended', inputs);
  }

  #run(method, inputs) {
    const where = `${this.#where}.${method}`;
    const module = this.#live(method);
    if (inputs === null || typeof inputs !== 'object') throw typeError(where, 'inputs', 'expected an object { query, key, value }');
    const { modelDim, kdim, vdim, heads } = this.#config;
    const query = float32Array(where, 'query', inputs.query);
    const key = float32Array(where, 'key', inputs.key);
    const value = float32Array(where, 'value', inputs.value);
    const batch = positiveInt(where, 'batch', inputs.batch, 1);
    const seqQ = rowCount(where, 'query', query, batch * modelDim, 'batch * modelDim');
    const seqK = rowCount(where, 'key', key, batch * kdim, 'batch * kdim');
    if (value.length !== batch * seqK * vdim) {
      throw rangeError(where, 'value', `length ${value.length} should be batch * seqK * vdim = ${batch * seqK * vdim}`);
    }
    const causal = boolean(where, 'causal', inputs.causal, this.causal);
    const call = {
      batch, seqQ, seqK, causal: causal ? 1 : 0,
      maskKind: 0, maskBatchStride: 0, maskHeadStride: 0, maskRowStride: seqK,
      query: 0, key: 0, value: 0, out: 0, mask: 0,
    };
    const mask = inputs.mask ?? null;
    // Checked with or without a mask: a misspelt layout is a mistake either way.
    if (inputs.maskLayout !== undefined) oneOf(where, 'maskLayout', inputs.maskLayout, MASK_LAYOUTS);
    if (mask !== null) {
      call.maskKind = checkMask(where, mask);
      const strides = maskStrides(where, mask, inputs.maskLayout, batch, heads, seqQ, seqK);
      call.maskBatchStride = strides.batchStride;
      call.maskHeadStride = strides.headStride;
    }
    return withHeap(module, where, (heap) => {
      call.query = heap.copyIn(query, 'query');
      call.key = heap.copyIn(key, 'key');
      call.value = heap.copyIn(value, 'value');
      if (mask !== null) call.mask = heap.copyIn(mask, 'mask');
      const outLength = batch * seqQ * modelDim;
      call.out = heap.alloc(outLength * 4, 'the output');
      raiseStatus(this.#handle.forward(call), where);
      return { output: heap.readF32(call.out, outLength) };
    });
  }

  // The softmax weights of the last forward, [batch][heads][seqQ][seqK], recomputed now
  // (forward itself never holds the seqQ x seqK matrix).
  getAttentionWeights() {
    const where = `${this.#where}.getAttentionWeights`;
    const module = this.#live('getAttentionWeights');
    const length = this.#handle.weightsLength();
    if (length === 0) throw new Error(`${where}: no forward call yet`);
    return withHeap(module, where, (heap) => {
      const out = heap.alloc(length * 4, 'the output');
      raiseStatus(this.#handle.attentionWeights(out), where);
      return heap.readF32(out, length);
    });
  }

  // The weights in attnkit's versioned binary format (magic, version, dims, checksum).
  saveWeights() {
    const module = this.#live('saveWeights');
    return saveHandleWeights(`${this.#where}.saveWeights`, module, this.#handle);
  }

  // A Uint8Array from saveWeights(), or PyTorch state-dict arrays by name: in_proj_weight
  // (or q_proj_weight, k_proj_weight, v_proj_weight), in_proj_bias, out_proj.weight,
  // out_proj.bias. On any error the old weights stay.
  loadWeights(weights) {
    const where = `${this.#where}.loadWeights`;
    const module = this.#live('loadWeights');
    return loadMultiHeadWeights(where, module, this.#handle, weights);
  }

  // Stores the four projections' weights as 'int8' (per output channel; activations
  // quantized per row in each call, integer products), 'fp16' or 'fp32', in place, and
  // returns what it measured: weight bytes before and after, and the output error against
  // the layer before this call on `probe` ({ query, key, value, batch? }, or one
  // Float32Array for self-attention; default 64 random rows). With dropout the outputs are
  // random and outputError is null. saveWeights() then writes the weights in use as
  // float32, which quantize back to the same layer.
  quantizeWeights(precision = 'int8', options) {
    const where = `${this.#where}.quantizeWeights`;
    this.#live('quantizeWeights');
    const p = weightPrecision(where, 'precision', precision);
    const opts = optionsObject(where, options);
    const { modelDim, kdim, vdim } = this.#config;
    let probe = opts.probe;
    if (probe === undefined) {
      probe = { query: probeValues(64 * modelDim, 1), key: probeValues(64 * kdim, 2), value: probeValues(64 * vdim, 3) };
    } else if (probe instanceof Float32Array) {
      if (kdim !== modelDim || vdim !== modelDim) {
        throw rangeError(where, 'probe', 'one array is self-attention and needs kdim = vdim = modelDim; give { query, key, value }');
      }
      probe = { query: probe, key: probe, value: probe };
    } else if (probe === null || typeof probe !== 'object') {
      throw typeError(where, 'probe', 'expected a Float32Array or { query, key, value }');
    }
    const random = this.dropout > 0 && this.training;
    const run = random ? null : () => this.#run('quantizeWeights: probe', probe).output;
    this.#quantization = quantizeWith(where, this.#handle, p, opts.probe === undefined ? 'random' : 'given', run,
      'dropout > 0 in training mode: the outputs are random');
    return this.#quantization;
  }

  // weightBytes: the projections' weights and biases as held now; quantization: the last
  // quantizeWeights() report (null before).
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

// Cross attention: queries of width queryDim over keys and values of width keyDim (and
// another length); the seed's WasmCrossAttention over the same core.
export class WasmCrossAttention extends WasmMultiHeadAttention {
  constructor(options) {
    const opts = optionsObject('WasmCrossAttention', options);
    const queryDim = positiveInt('WasmCrossAttention', 'queryDim', opts.queryDim);
    const keyDim = positiveInt('WasmCrossAttention', 'keyDim', opts.keyDim);
    super({ ...opts, modelDim: queryDim, kdim: keyDim, vdim: keyDim },
      'WasmCrossAttention');
  }

  get queryDim() { return this.modelDim; }
  get keyDim() { return this.kdim; }
}
