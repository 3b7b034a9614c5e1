// A tiny protobuf encoder, just enough to build small ONNX models in code: com.microsoft
// MultiHeadAttention on query/key/value [batch, seq, heads*dim], and a multi-head attention
// layer with its projections (com.microsoft Attention, MatMul, Add) and weights.
// Field numbers from onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto,
// ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto).

function varint(value) {
  const out = [];
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;  // int64 as two's complement, 10 bytes
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return out;
}

const key = (field, wire) => varint((field << 3) | wire);
const concat = (parts) => parts.flat();

const int = (field, value) => concat([key(field, 0), varint(value)]);
const bytes = (field, data) => concat([key(field, 2), varint(data.length), Array.from(data)]);
const str = (field, s) => bytes(field, new TextEncoder().encode(s));
const msg = (field, parts) => bytes(field, concat(parts));
const f32 = (field, x) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, x, true);
  return concat([key(field, 5), Array.from(b)]);
};

const FLOAT = 1;  // TensorProto.DataType.FLOAT
const ATTR_FLOAT = 1;
const ATTR_INT = 2;

// dims: numbers (dim_value) or strings (dim_param, symbolic).
function valueInfo(name, dims) {
  const dimMsgs = dims.map((d) => msg(1, [typeof d === 'number' ? int(1, d) : str(2, d)]));
  const shape = msg(2, dimMsgs);
  const tensorType = msg(1, [int(1, FLOAT), shape]);
  return [str(1, name), msg(2, [tensorType])];
}

function attribute(name, value) {
  if (Number.isInteger(value)) return [str(1, name), int(3, value), int(20, ATTR_INT)];
  return [str(1, name), f32(2, value), int(20, ATTR_FLOAT)];
}

// A TensorProto of float32 values (an initializer): dims, data_type, name, raw_data.
function tensorProto(name, dims, values) {
  const raw = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return [...dims.map((d) => int(1, d)), int(2, FLOAT), str(8, name), bytes(9, raw)];
}

function nodeProto({ opType, domain = '', inputs, outputs, attributes = {} }, index) {
  return [
    ...inputs.map((name) => str(1, name)),
    ...outputs.map((name) => str(2, name)),
    str(3, `node${index}`),
    str(4, opType),
    ...Object.entries(attributes).map(([k, v]) => msg(5, attribute(k, v))),
    str(7, domain),
  ];
}

// A model of several nodes; inputs/outputs are [name, dims] pairs (float tensors),
// initializers [name, dims, Float32Array] triples.
export function graphModel({ name, nodes, inputs, outputs, initializers = [] }) {
  const graph = [
    ...nodes.map((n, i) => msg(1, nodeProto(n, i))),
    str(2, name),
    ...initializers.map(([n, dims, values]) => msg(5, tensorProto(n, dims, values))),
    ...inputs.map(([n, dims]) => msg(11, valueInfo(n, dims))),
    ...outputs.map(([n, dims]) => msg(12, valueInfo(n, dims))),
  ];
  const model = [
    int(1, 8),                                   // ir_version
    str(2, 'attnkit-bench'),                     // producer_name
    msg(7, graph),
    msg(8, [str(1, ''), int(2, 17)]),            // opset_import: ai.onnx 17
    msg(8, [str(1, 'com.microsoft'), int(2, 1)]),
  ];
  return Uint8Array.from(concat(model));
}

// A model of one node; inputs/outputs are [name, dims] pairs (float tensors).
export function oneNodeModel({ opType, domain = '', inputs, outputs, attributes = {} }) {
  return graphModel({
    name: `attnkit_bench_${opType}`,
    nodes: [{ opType, domain, inputs: inputs.map(([n]) => n), outputs: outputs.map(([n]) => n), attributes }],
    inputs, outputs,
  });
}

// com.microsoft MultiHeadAttention, self-attention shapes [batch, seq, heads*dim];
// `unidirectional` = 1 for causal. Returns the serialized ModelProto.
export function multiHeadAttentionModel({ heads, dim, causal = false, scale }) {
  const hidden = heads * dim;
  const attributes = { num_heads: heads };
  if (causal) attributes.unidirectional = 1;
  if (scale !== undefined) attributes.scale = scale;
  return oneNodeModel({
    opType: 'MultiHeadAttention',
    domain: 'com.microsoft',
    inputs: [['query', ['batch', 'seq', hidden]], ['key', ['batch', 'kv_seq', hidden]], ['value', ['batch', 'kv_seq', hidden]]],
    outputs: [['output', ['batch', 'seq', hidden]]],
    attributes,
  });
}

// nn.MultiheadAttention's computation for self attention: com.microsoft Attention (packed
// Q/K/V projection weights [modelDim][3 modelDim] in [in][out] layout, biases, num_heads,
// unidirectional for causal), then the output projection as MatMul + Add.
export function multiHeadLayerModel({ modelDim, heads, qkvWeight, qkvBias, outWeight, outBias, causal = false }) {
  const attributes = { num_heads: heads };
  if (causal) attributes.unidirectional = 1;
  return graphModel({
    name: 'attnkit_bench_multihead_layer',
    nodes: [
      { opType: 'Attention', domain: 'com.microsoft', inputs: ['input', 'qkv_weight', 'qkv_bias'], outputs: ['attn'], attributes },
      { opType: 'MatMul', inputs: ['attn', 'out_weight'], outputs: ['projected'] },
      { opType: 'Add', inputs: ['projected', 'out_bias'], outputs: ['output'] },
    ],
    inputs: [['input', ['batch', 'seq', modelDim]]],
    outputs: [['output', ['batch', 'seq', modelDim]]],
    initializers: [
      ['qkv_weight', [modelDim, 3 * modelDim], qkvWeight], ['qkv_bias', [3 * modelDim], qkvBias],
      ['out_weight', [modelDim, modelDim], outWeight], ['out_bias', [modelDim], outBias],
    ],
  });
}
