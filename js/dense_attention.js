// WasmDenseAttention: AdaAttn's DenseAttention (seed 002) on the core's DenseAttention
// (src/adaattn/dense_attention.h): multi-head attention over [batch][seq][embedDim] inputs
// that returns, when asked, its weights averaged over heads. Projections on the SIMD GEMM
// (MultiHeadAttention's, so the weights and their formats are the same), heads on the flash
// kernel. Dropout applies only in training mode (DropoutLayer's train()), off by default. The
// weights live in the WebAssembly heap until dispose() (or until a FinalizationRegistry frees
// them).
import { raiseStatus, rangeError, typeError } from './errors.js';
import { withHeap } from './heap.js';
import { construct, disposedError, release } from './handle.js';
import { DropoutLayer } from './dropout_layer.js';
import { loadMultiHeadWeights, saveHandleWeights } from './weights.js';
import { runtimeOption } from './runtime.js';
import { boolean, finiteNumber, float32Array, optionsObject, outputArray, positiveInt, rowCount, seedValue } from './validate.js';
import { layerMaskFields } from './mask_layout.js';

const WHERE = 'WasmDenseAttention';
export class WasmDenseAttention extends DropoutLayer {
  #runtime;
  #config;
  #handle;

  // options: { embedDim, numHeads = 8, dropout = 0, causal = false, bias = true, seed = 0,
  // training = false, runtime }
  constructor(options) {
    super(WHERE, (method) => {
      this.#live(method);
      return this.#handle;
    });
    const opts = optionsObject(WHERE, options);
    if (opts.embedDim === undefined) throw typeError(WHERE, 'embedDim', 'is required (the model width)');
    const embedDim = positiveInt(WHERE, 'embedDim', opts.embedDim);
    const config = {
      embedDim,
      numHeads: positiveInt(WHERE, 'numHeads', opts.numHeads, 8),
      dropout: finiteNumber(WHERE, 'dropout', opts.dropout, 0, { min: 0, max: 1, maxExclusive: true }),
      causal: boolean(WHERE, 'causal', opts.causal, false),
      bias: boolean(WHERE, 'bias', opts.bias, true),
      seed: seedValue(WHERE, opts.seed, 0),
    };
    if (embedDim % config.numHeads !== 0) {
      throw rangeError(WHERE, 'numHeads', `must divide embedDim (${embedDim}), got ${config.numHeads}`);
    }
    const training = boolean(WHERE, 'training', opts.training, false);
    this.#config = Object.freeze(config);
    this.#runtime = runtimeOption(WHERE, opts.runtime);
    const module = this.#runtime.module;
    raiseStatus(module.validateDenseAttention(config), WHERE);
    this.#handle = construct(this, module, 'DenseAttentionHandle', config, WHERE);
    this.#handle.setTraining(training);
  }

  get embedDim() { return this.#config.embedDim; }
  get numHeads() { return this.#config.numHeads; }
  get headDim() { return this.#config.embedDim / this.#config.numHeads; }
  get dropout() { return this.#config.dropout; }
  get causal() { return this.#config.causal; }
  get bias() { return this.#config.bias; }
  get seed() { return this.#config.seed; }

  #live(method) {
    if (this.#handle === null) throw disposedError(WHERE, method);
    return this.#runtime.module;
  }

  // query [batch][seqQ][embedDim], key and value [batch][seqK][embedDim] (seqK may differ).
  // options: { batch = 1, needWeights = false, attentionMask, maskLayout, out }.
  // attentionMask: a Uint8Array (1 attends) or additive Float32Array, laid out [batch, seqK]
  // (key padding), [seqQ, seqK], [batch, seqQ, seqK], [numHeads, seqQ, seqK] or
  // [batch, numHeads, seqQ, seqK] ('bk', 'qk', 'bqk', 'hqk', 'bhqk'), known from its length.
  // Returns { output [batch][seqQ][embedDim], weights [batch][seqQ][seqK] or null }: the
  // weights averaged over heads, as they multiplied V (after dropout in training).
  forward(query, key, value, options) {
    const where = `${WHERE}.forward`;
    const module = this.#live('forward');
    const opts = optionsObject(where, options);
    const { embedDim, numHeads } = this.#config;
    float32Array(where, 'query', query);
    float32Array(where, 'key', key);
    float32Array(where, 'value', value);
    const batch = positiveInt(where, 'batch', opts.batch, 1);
    const seqQ = rowCount(where, 'query', query, batch * embedDim, 'batch * embedDim');
    const seqK = rowCount(where, 'key', key, batch * embedDim, 'batch * embedDim');
    if (value.length !== key.length) {
      throw rangeError(where, 'value', `length ${value.length} should equal key's, batch * seqK * embedDim = ${key.length}`);
    }
    const needWeights = boolean(where, 'needWeights', opts.needWeights, false);
    const outLength = batch * seqQ * embedDim;
    const out = outputArray(where, 'out', opts.out, outLength, 'batch * seqQ * embedDim');
    const mask = opts.attentionMask ?? null;
    const call = {
      batch, seqQ, seqK, ...layerMaskFields(where, mask, opts.maskLayout, batch, numHeads, seqQ, seqK),
      query: 0, key: 0, value: 0, out: 0, weights: 0, mask: 0,
    };
    return withHeap(module, where, (heap) => {
      call.query = heap.copyIn(query, 'query');
      call.key = heap.copyIn(key, 'key');
      call.value = heap.copyIn(value, 'value');
      if (mask !== null) call.mask = heap.copyIn(mask, 'mask');
      call.out = heap.alloc(outLength * 4, 'the output');
      const weightsLength = batch * seqQ * seqK;
      if (needWeights) call.weights = heap.alloc(weightsLength * 4, 'the weights');
      raiseStatus(this.#handle.forward(call), where);
      return {
        output: heap.readF32(call.out, outLength, out),
        weights: needWeights ? heap.readF32(call.weights, weightsLength) : null,
      };
    });
  }

  // The weights in attnkit's versioned binary format, the same as WasmMultiHeadAttention's.
  saveWeights() {
    const module = this.#live('saveWeights');
    return saveHandleWeights(`${WHERE}.saveWeights`, module, this.#handle);
  }

  // A Uint8Array from saveWeights() (of this class or WasmMultiHeadAttention), or PyTorch
  // nn.MultiheadAttention state-dict arrays by name. On any error the old weights stay.
  loadWeights(weights) {
    const where = `${WHERE}.loadWeights`;
    const module = this.#live('loadWeights');
    return loadMultiHeadWeights(where, module, this.#handle, weights);
  }

  getMemoryUsage() {
    const module = this.#live('getMemoryUsage');
    return { heapUsed: module.heapUsed(), heapTotal: module.heapU8().byteLength, paramCount: this.#handle.paramCount() };
  }

  dispose() {
    this.#handle = release(this, this.#handle);
  }

  get disposed() {
    return this.#handle === null;
  }
}
