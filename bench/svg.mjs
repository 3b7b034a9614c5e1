// A small SVG line chart of GFLOP/s against sequence length (log2 x, linear y), one
// panel per (head dim, causal), drawn without any library. Series far below the scale
// (offScale: true, e.g. 0.01 GFLOP/s) are written as values along the bottom instead.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toPrecision(3) : x >= 0.001 ? String(Number(x.toPrecision(2))) : x.toExponential(0));

// series: [{ id, label, color, dash, width, marker, points: [{dim, causal, seq, gflops, note}] }]
// refs: [{ label, value, color }] horizontal lines; failures: [{ id, dim, causal, seq, label, color }]
export function chartSvg({ title, subtitle, panels, series, refs = [], failures = [], seqs }) {
  const W = 1200;
  const cols = 2;
  const rows = Math.ceil(panels.length / cols);
  const legendH = 30 + Math.ceil((series.length + refs.length) / 4) * 20;
  const top = 58 + legendH;
  const pw = 530;
  const ph = 330;
  const gapX = 70;
  const gapY = 60;
  const H = top + rows * (ph + gapY) + 10;
  const all = [
    ...series.filter((s) => !s.offScale).flatMap((s) => s.points.map((p) => p.gflops)),
    ...refs.map((r) => r.value),
  ].filter((x) => Number.isFinite(x) && x > 0);
  const yMax = Math.ceil((Math.max(...all) * 1.08) / 20) * 20;
  const yStep = yMax > 100 ? 20 : 10;
  const xs = seqs.map((s) => Math.log2(s));
  const xMin = Math.min(...xs) - 0.3;
  const xMax = Math.max(...xs) + 0.3;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">${esc(title)}</text>`);
  if (subtitle) out.push(`<text x="${W / 2}" y="44" text-anchor="middle" font-size="12" fill="#555">${esc(subtitle)}</text>`);
  // Legend
  const items = [...series.map((s) => ({ ...s, kind: 'series' })), ...refs.map((r) => ({ ...r, kind: 'ref' }))];
  items.forEach((it, i) => {
    const lx = 60 + (i % 4) * 280;
    const ly = 66 + Math.floor(i / 4) * 20;
    if (it.kind === 'series') {
      out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 30}" y2="${ly}" stroke="${it.color}" stroke-width="${it.width ?? 2}"${it.dash ? ` stroke-dasharray="${it.dash}"` : ''}/>`);
      out.push(marker(it.marker, lx + 15, ly, it.color, false));
    } else {
      out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 30}" y2="${ly}" stroke="${it.color}" stroke-width="1.2" stroke-dasharray="2,3"/>`);
    }
    out.push(`<text x="${lx + 38}" y="${ly + 4}">${esc(it.label)}</text>`);
  });
  panels.forEach((panel, pi) => {
    const ox = 65 + (pi % cols) * (pw + gapX);
    const oy = top + Math.floor(pi / cols) * (ph + gapY);
    const X = (seq) => ox + ((Math.log2(seq) - xMin) / (xMax - xMin)) * pw;
    const Y = (g) => oy + ph - (g / yMax) * ph;
    out.push(`<rect x="${ox}" y="${oy}" width="${pw}" height="${ph}" fill="#fafafa" stroke="#999"/>`);
    out.push(`<text x="${ox + pw / 2}" y="${oy - 8}" text-anchor="middle" font-size="13" font-weight="bold">${esc(panel.title)}</text>`);
    for (let g = 0; g <= yMax + 1e-9; g += yStep) {
      const y = Y(g);
      out.push(`<line x1="${ox}" y1="${y}" x2="${ox + pw}" y2="${y}" stroke="#ddd"/>`);
      out.push(`<text x="${ox - 6}" y="${y + 4}" text-anchor="end" fill="#444">${g}</text>`);
    }
    for (const s of seqs) {
      const x = X(s);
      out.push(`<line x1="${x}" y1="${oy}" x2="${x}" y2="${oy + ph}" stroke="#e6e6e6"/>`);
      out.push(`<text x="${x}" y="${oy + ph + 16}" text-anchor="middle" fill="#444">${s}</text>`);
    }
    out.push(`<text x="${ox + pw / 2}" y="${oy + ph + 34}" text-anchor="middle" fill="#333">sequence length</text>`);
    out.push(`<text transform="translate(${ox - 50},${oy + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">GFLOP/s</text>`);
    refs.forEach((r, ri) => {
      const y = Y(r.value);
      const right = ri % 2 === 1;
      out.push(`<line x1="${ox}" y1="${y}" x2="${ox + pw}" y2="${y}" stroke="${r.color}" stroke-width="1.2" stroke-dasharray="2,3"/>`);
      out.push(`<text x="${right ? ox + pw - 4 : ox + 4}" y="${y - 4}" text-anchor="${right ? 'end' : 'start'}" fill="${r.color}" font-size="11">${esc(r.short ?? r.label)} ${fmt(r.value)}</text>`);
    });
    for (const s of series.filter((x) => x.offScale)) {
      for (const p of s.points.filter((q) => q.dim === panel.dim && q.causal === panel.causal && q.gflops > 0)) {
        const x = X(p.seq);
        const y = oy + ph - 8;
        out.push(marker(s.marker, x, y - 4, s.color, p.hollow));
        out.push(`<text x="${x + 8}" y="${y}" fill="${s.color}" font-size="11">${esc(s.short ?? '')}${fmt(p.gflops)}${p.hollow ? ' est.' : ''}</text>`);
      }
    }
    for (const s of series.filter((x) => !x.offScale)) {
      const pts = s.points.filter((p) => p.dim === panel.dim && p.causal === panel.causal && p.gflops > 0)
        .sort((a, b) => a.seq - b.seq);
      if (pts.length > 1) {
        const d = pts.map((p, i) => `${i ? 'L' : 'M'}${X(p.seq).toFixed(1)},${Y(p.gflops).toFixed(1)}`).join(' ');
        out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
      }
      for (const p of pts) {
        out.push(marker(s.marker, X(p.seq), Y(p.gflops), s.color, p.hollow));
        if (p.note) out.push(`<text x="${X(p.seq) + 7}" y="${Y(p.gflops) + 4}" fill="${s.color}" font-size="10">${esc(p.note)}</text>`);
      }
    }
    failures.filter((f) => f.dim === panel.dim && f.causal === panel.causal).forEach((f) => {
      const x = X(f.seq);
      const y = oy + ph - 26 - 14 * (f.slot ?? 0);
      const anchor = f.seq === Math.max(...seqs) ? 'end' : 'middle';
      out.push(`<text x="${anchor === 'end' ? x + 8 : x}" y="${y}" text-anchor="${anchor}" fill="${f.color}" font-size="11" font-weight="bold">✕ ${esc(f.label)}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n');
}

function marker(kind, x, y, color, hollow) {
  const fill = hollow ? '#ffffff' : color;
  const X = x.toFixed(1);
  const Y = y.toFixed(1);
  switch (kind) {
    case 'square': return `<rect x="${(x - 4).toFixed(1)}" y="${(y - 4).toFixed(1)}" width="8" height="8" fill="${fill}" stroke="${color}" stroke-width="1.5"/>`;
    case 'diamond': return `<path d="M${X},${(y - 5).toFixed(1)} L${(x + 5).toFixed(1)},${Y} L${X},${(y + 5).toFixed(1)} L${(x - 5).toFixed(1)},${Y} Z" fill="${fill}" stroke="${color}" stroke-width="1.5"/>`;
    case 'triangle': return `<path d="M${X},${(y - 5).toFixed(1)} L${(x + 5).toFixed(1)},${(y + 4).toFixed(1)} L${(x - 5).toFixed(1)},${(y + 4).toFixed(1)} Z" fill="${fill}" stroke="${color}" stroke-width="1.5"/>`;
    default: return `<circle cx="${X}" cy="${Y}" r="4" fill="${fill}" stroke="${color}" stroke-width="1.5"/>`;
  }
}
