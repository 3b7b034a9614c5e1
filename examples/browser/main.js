// attnkit in a page: the heavy calls run in an AttentionWorker (its own WASM runtime, threads
// when the page is cross-origin isolated), each output is checked against a float64
// reference written here, and the weights and speeds are drawn on two canvases.
import { AttentionWorker, checkSIMDSupport, checkThreadSupport } from 'attnkit';

const HEADS = 8, DIM = 64, WINDOW = 128, HEAT_ROWS = 160, TOLERANCE = 1e-4;
const TYPES = {
  flash: { label: 'flash (full)', color: '#2563eb' },
  causal: { label: 'flash (causal)', color: '#16a34a' },
  linear: { label: 'linear (elu)', color: '#c2410c' },
  local: { label: 'sparse local', color: '#9333ea' },
};
const $ = (id) => document.getElementById(id);

// ---- the float64 reference: one query row of one head, and its weights -------------------

const elu1 = (x) => (x > 0 ? x + 1 : Math.exp(x));
function referenceRow(type, Q, K, V, n, h, i) {
  const at = (row) => (row * HEADS + h) * DIM;
  const weights = new Float64Array(n);
  let total = 0;
  if (type === 'linear') {
    // out_i = Σ_j φ(q_i)·φ(k_j) v_j / (Σ_j φ(q_i)·φ(k_j) + eps), φ = elu + 1
    for (let j = 0; j < n; ++j) {
      let s = 0;
      for (let c = 0; c < DIM; ++c) s += elu1(Q[at(i) + c]) * elu1(K[at(j) + c]);
      weights[j] = s;
      total += s;
    }
    total += 1e-6;
  } else {
    const sees = type === 'causal' ? (j) => j <= i : type === 'local' ? (j) => Math.abs(i - j) <= WINDOW / 2 : () => true;
    let max = -Infinity;
    for (let j = 0; j < n; ++j) {
      if (!sees(j)) { weights[j] = -Infinity; continue; }
      let s = 0;
      for (let c = 0; c < DIM; ++c) s += Q[at(i) + c] * K[at(j) + c];
      weights[j] = s / Math.sqrt(DIM);
      max = Math.max(max, weights[j]);
    }
    for (let j = 0; j < n; ++j) total += (weights[j] = Math.exp(weights[j] - max));
  }
  const out = new Float64Array(DIM);
  for (let j = 0; j < n; ++j) {
    weights[j] /= total;
    for (let c = 0; c < DIM; ++c) out[c] += weights[j] * V[at(j) + c];
  }
  return { weights, out };
}

// Max |output − reference| over sampled rows (every head), relative to the largest reference value.
function checkOutput(type, Q, K, V, n, output) {
  const rows = [...new Set([0, 1, n >> 2, n >> 1, n - 2, n - 1, (n * 0.77) | 0])].filter((i) => i >= 0 && i < n);
  let err = 0, big = 0;
  for (const i of rows) {
    for (let h = 0; h < HEADS; ++h) {
      const { out } = referenceRow(type, Q, K, V, n, h, i);
      for (let c = 0; c < DIM; ++c) {
        err = Math.max(err, Math.abs(out[c] - output[(i * HEADS + h) * DIM + c]));
        big = Math.max(big, Math.abs(out[c]));
      }
    }
  }
  return { relErr: err / big, rows: rows.length };
}

function flops(type, n, stats) {
  if (type === 'flash') return 4 * n * n * DIM * HEADS;
  if (type === 'causal') return 4 * (n * (n + 1) / 2) * DIM * HEADS;
  if (type === 'local') return 4 * stats.computedScores * DIM;
  return 4 * n * DIM * DIM * HEADS;
}

// ---- drawing ------------------------------------------------------------------------------

// weights: rows × cols, each row scaled to its own largest weight so that every row shows.
function drawHeatmap(weights, rows, cols, caption) {
  const canvas = $('heatmap'), ctx = canvas.getContext('2d');
  const image = ctx.createImageData(cols, rows);
  for (let i = 0; i < rows; ++i) {
    let max = 0;
    for (let j = 0; j < cols; ++j) max = Math.max(max, weights[i * cols + j]);
    for (let j = 0; j < cols; ++j) {
      const t = max > 0 ? Math.sqrt(weights[i * cols + j] / max) : 0;
      const p = (i * cols + j) * 4;
      image.data[p] = 255 * Math.min(1, 1.6 * t);
      image.data[p + 1] = 255 * Math.max(0, 1.7 * t - 0.7);
      image.data[p + 2] = 60 + 120 * t * (1 - t);
      image.data[p + 3] = 255;
    }
  }
  const tile = document.createElement('canvas');
  tile.width = cols;
  tile.height = rows;
  tile.getContext('2d').putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(tile, 0, 0, canvas.width, canvas.height);
  $('heatmap-caption').textContent = caption;
}

const points = [];  // { type, n, gflops }
function drawChart() {
  const canvas = $('chart'), ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height, left = 40, right = 26, top = 22, bottom = 36;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, W, H);
  const lengths = [128, 256, 512, 1024, 2048, 4096];
  const ymax = Math.max(1, ...points.map((p) => p.gflops)) * 1.15;
  const x = (n) => left + (Math.log2(n / 128) / 5) * (W - left - right);
  const y = (g) => H - bottom - (g / ymax) * (H - top - bottom);
  ctx.strokeStyle = '#ccd';
  ctx.fillStyle = '#444';
  ctx.font = '11px system-ui';
  for (let k = 0; k <= 4; ++k) {
    const g = (ymax * k) / 4;
    ctx.beginPath(); ctx.moveTo(left, y(g)); ctx.lineTo(W - right, y(g)); ctx.stroke();
    ctx.fillText(g.toFixed(g < 10 ? 1 : 0), 6, y(g) + 4);
  }
  for (const n of lengths) ctx.fillText(String(n), x(n) - 12, H - bottom + 14);
  ctx.fillText('sequence length', W / 2 - 40, H - 6);
  ctx.fillText('GFLOP/s', 6, 12);
  let legend = 0;
  for (const [type, { label, color }] of Object.entries(TYPES)) {
    const series = points.filter((p) => p.type === type).sort((a, b) => a.n - b.n);
    if (!series.length) continue;
    ctx.strokeStyle = ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    series.forEach((p, k) => (k ? ctx.lineTo(x(p.n), y(p.gflops)) : ctx.moveTo(x(p.n), y(p.gflops))));
    ctx.stroke();
    for (const p of series) { ctx.beginPath(); ctx.arc(x(p.n), y(p.gflops), 3, 0, 7); ctx.fill(); }
    ctx.fillText(label, left + 8, top + 14 + 14 * legend++);
  }
  ctx.lineWidth = 1;
}

// ---- running --------------------------------------------------------------------------------

let worker = null;
const objects = {};

async function objectFor(type) {
  if (!objects[type]) {
    const [className, options] = {
      flash: ['WasmFlashAttention', { heads: HEADS, dim: DIM }],
      causal: ['WasmFlashAttention', { heads: HEADS, dim: DIM, causal: true }],
      linear: ['WasmLinearAttention', { heads: HEADS, dim: DIM, featureMap: 'elu' }],
      local: ['WasmSparseAttention', { heads: HEADS, headDim: DIM, pattern: 'local', windowSize: WINDOW, blockSize: 64 }],
    }[type];
    objects[type] = await worker.construct(className, options);
  }
  return objects[type];
}

const random = (length) => Float32Array.from({ length }, () => Math.random() * 2 - 1);

// Counts frames drawn while a call is in flight: the proof that the page did not block.
function frameCounter() {
  let frames = 0, running = true;
  const tick = () => { if (running) { frames++; $('ticker').textContent = '⟳'.padEnd(1 + (frames >> 3) % 4, '·'); requestAnimationFrame(tick); } };
  requestAnimationFrame(tick);
  return () => { running = false; $('ticker').textContent = ''; return frames; };
}

async function run(type, n, { heatmap = true } = {}) {
  $('type').value = type;
  $('length').value = String(n);
  const attn = await objectFor(type);
  const Q = random(n * HEADS * DIM), K = random(n * HEADS * DIM), V = random(n * HEADS * DIM);
  const stop = frameCounter();
  const started = performance.now();
  let best = Infinity, output = null;
  for (let call = 0; call < 3; ++call) {
    const t0 = performance.now();
    output = await attn.forward(Q, K, V);
    best = Math.min(best, performance.now() - t0);
  }
  const frames = stop(), wall = performance.now() - started;
  const stats = type === 'local' ? await attn.get('lastStats') : null;
  const gflops = flops(type, n, stats) / (best * 1e6);
  const check = checkOutput(type, Q, K, V, n, output);
  const result = { type, n, ms: best, gflops, relErr: check.relErr, pass: check.relErr < TOLERANCE, frames, wallMs: wall,
    threads: worker.info.threads, variant: worker.info.variant, sparseRatio: stats ? stats.sparseRatio : null };

  $('check').textContent = `${result.pass ? 'pass' : 'FAIL'}: max relative error ${check.relErr.toExponential(2)} ` +
    `against a float64 reference (${check.rows} query rows × ${HEADS} heads; tolerance ${TOLERANCE})`;
  $('check').className = result.pass ? 'pass' : 'fail';
  $('timing').textContent = `${TYPES[type].label}, n = ${n}: ${best.toFixed(2)} ms (best of 3), ${gflops.toFixed(1)} GFLOP/s, ` +
    `${worker.info.variant} × ${worker.info.threads} thread(s)` + (stats ? `; skipped ${(100 * stats.sparseRatio).toFixed(1)}% of the scores` : '');
  $('responsive').textContent = `${frames} frames drawn during ${wall.toFixed(0)} ms of calls`;
  const old = points.findIndex((p) => p.type === type && p.n === n);
  if (old >= 0) points.splice(old, 1);
  points.push({ type, n, gflops });
  drawChart();
  if (heatmap) await drawWeights(type, attn, Q, K, V, n);
  window.attnkitDemo.last = { ...result, q: Q, k: K, v: V, output };
  return result;
}

async function drawWeights(type, attn, Q, K, V, n) {
  const rows = Math.min(n, HEAT_ROWS);
  const weights = new Float64Array(rows * rows);
  let caption;
  if (type === 'flash' || type === 'causal') {
    // The library's own weights, [heads][rows][n], for the first `rows` queries.
    const scores = await attn.attentionScores(Q.subarray(0, rows * HEADS * DIM), K);
    for (let i = 0; i < rows; ++i) for (let j = 0; j < rows; ++j) weights[i * rows + j] = scores[i * n + j];
    caption = `Attention weights of head 0 from attentionScores(): queries 0–${rows - 1} × keys 0–${rows - 1} ` +
      `of ${n} (each row scaled to its largest weight).`;
  } else {
    for (let i = 0; i < rows; ++i) weights.set(referenceRow(type, Q, K, V, n, 0, i).weights.subarray(0, rows), i * rows);
    caption = `The weights ${type === 'linear' ? 'linear attention implies (φ(q)·φ(k), normalised)' : 'of the local pattern'} ` +
      `for head 0, from the float64 reference: queries 0–${rows - 1} × keys 0–${rows - 1} of ${n} (rows scaled to their maxima).`;
  }
  drawHeatmap(weights, rows, rows, caption);
}

async function busy(fn) {
  $('run').disabled = $('sweep').disabled = true;
  try {
    return await fn();
  } catch (err) {
    $('check').textContent = `${err.name}: ${err.message}`;
    $('check').className = 'fail';
    throw err;
  } finally {
    $('run').disabled = $('sweep').disabled = false;
  }
}

async function setThreads(value) {
  const n = Math.max(1, Math.min(worker.info.maxThreads, Number(value) || 1));
  await worker.setNumThreads(n);
  $('threads').value = n;
  showRuntime();
}

function showRuntime() {
  const { variant, threads, maxThreads, reason } = worker.info;
  const panel = $('runtime');
  panel.className = `panel ${variant === 'simd' ? 'single' : ''}`;
  panel.innerHTML = `Loaded <b>${variant}</b> (WebAssembly SIMD128${variant === 'simd-threads' ? ' + threads' : ', one thread'}), ` +
    `running ${threads} of ${maxThreads} thread(s). Why: ${reason}.` +
    (window.crossOriginIsolated ? '' : '<br>This page is <b>not cross-origin isolated</b> (no COOP/COEP headers), ' +
      'so SharedArrayBuffer is unavailable and attnkit runs on one thread.');
  panel.dataset.state = 'ready';
  panel.dataset.variant = variant;
  panel.dataset.threads = String(threads);
}

async function start() {
  const panel = $('runtime');
  if (!checkSIMDSupport()) {
    panel.className = 'panel error';
    panel.textContent = 'This browser lacks WebAssembly SIMD128, which attnkit requires ' +
      '(Chrome 91+, Firefox 89+, Safari 16.4+). Nothing can run here.';
    panel.dataset.state = 'error';
    return;
  }
  const cores = navigator.hardwareConcurrency || 4;
  worker = await AttentionWorker.create({ numThreads: checkThreadSupport() ? cores : 1 });
  $('threads').max = worker.info.maxThreads;
  $('threads').value = worker.info.threads;
  $('threads').disabled = worker.info.maxThreads === 1;
  showRuntime();
  $('threads').addEventListener('change', () => busy(() => setThreads($('threads').value)));
  $('run').addEventListener('click', () => busy(() => run($('type').value, Number($('length').value))));
  $('sweep').addEventListener('click', () => busy(() => sweep($('type').value, [256, 512, 1024, 2048, 4096])));
  $('run').disabled = $('sweep').disabled = false;
  drawChart();
}

async function sweep(type, lengths) {
  const results = [];
  for (const n of lengths) results.push(await run(type, n, { heatmap: n === lengths[lengths.length - 1] }));
  return results;
}

// What the browser test drives (tests/browser/browser.test.mjs); a person uses the buttons.
window.attnkitDemo = {
  ready: start().catch((err) => {
    const panel = $('runtime');
    panel.className = 'panel error';
    panel.textContent = `attnkit could not start: ${err.message}`;
    panel.dataset.state = 'error';
  }),
  run: (type, n) => busy(() => run(type, n)),
  sweep: (type, lengths) => busy(() => sweep(type, lengths)),
  setThreads: (n) => busy(() => setThreads(n)),
};
