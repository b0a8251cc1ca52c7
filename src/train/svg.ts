// Training curves as a self-contained SVG: loss (left) and accuracy (right) per epoch, train and
// validation series, with axes, ticks and a legend. Browser-safe (returns a string).

export interface Series {
  name: string;
  color: string;
  dash?: boolean;
  points: [number, number][]; // [epoch, value]
}

const W = 360,
  H = 250,
  M = { l: 52, r: 14, t: 44, b: 40 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** About `n` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) {
    const d = Math.abs(lo) * 0.1 || 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Number(v.toPrecision(3)).toString();
}

function panel(x0: number, title: string, series: Series[], yRange?: [number, number]): string {
  const pts = series.flatMap((s) => s.points).filter(([, v]) => Number.isFinite(v));
  if (pts.length === 0) return `<text x="${x0 + W / 2}" y="${H / 2}" text-anchor="middle" fill="#666">${esc(title)}: no data</text>`;
  const xs = pts.map((p) => p[0]);
  const x0v = Math.min(...xs),
    x1v = Math.max(...xs);
  // a little room on each side so the end points are not on the frame
  const xPad = Math.max(0.25, (x1v - x0v) * 0.04);
  const xMin = x0v - xPad,
    xMax = x1v + xPad;
  let yMin = yRange?.[0] ?? Math.min(...pts.map((p) => p[1]));
  let yMax = yRange?.[1] ?? Math.max(...pts.map((p) => p[1]));
  const yPad = (yMax - yMin) * 0.06 || Math.abs(yMax) * 0.05 || 0.05;
  yMin -= yPad;
  yMax += yPad;
  const yt = niceTicks(yMin, yMax).filter((v) => v >= yMin && v <= yMax);
  const xt = niceTicks(x0v, x1v, Math.min(10, Math.max(1, x1v - x0v))).filter((v) => Number.isInteger(v) && v >= x0v && v <= x1v);
  const pw = W - M.l - M.r,
    ph = H - M.t - M.b;
  const sx = (v: number) => x0 + M.l + ((v - xMin) / (xMax - xMin || 1)) * pw;
  const sy = (v: number) => M.t + ph - ((v - yMin) / (yMax - yMin || 1)) * ph;
  const parts: string[] = [];
  parts.push(`<text x="${x0 + M.l}" y="16" font-weight="bold">${esc(title)}</text>`);
  for (const v of yt) {
    parts.push(`<line x1="${sx(xMin)}" x2="${sx(xMax)}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${x0 + M.l - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`);
  }
  for (const v of xt) parts.push(`<text x="${sx(v).toFixed(1)}" y="${M.t + ph + 16}" text-anchor="middle">${v}</text>`);
  parts.push(`<text x="${x0 + M.l + pw / 2}" y="${H - 6}" text-anchor="middle">epoch</text>`);
  parts.push(`<rect x="${x0 + M.l}" y="${M.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  series.forEach((s, i) => {
    const good = s.points.filter(([, v]) => Number.isFinite(v));
    if (good.length === 0) return;
    const d = good.map(([x, y], j) => `${j ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5,3"' : ''}/>`);
    for (const [x, y] of good)
      parts.push(
        `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"><title>${esc(s.name)} epoch ${x}: ${y.toFixed(4)}</title></circle>`,
      );
    // legend in the top margin, one entry per series, left to right
    const lx = x0 + M.l + i * 120,
      ly = 34;
    parts.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5,3"' : ''}/>`,
    );
    parts.push(`<text x="${lx + 22}" y="${ly}">${esc(s.name)}</text>`);
  });
  return parts.join('\n');
}

/** Two panels (loss, accuracy) from per-epoch records. */
export function trainingCurvesSvg(history: readonly Record<string, unknown>[], title = 'training curves'): string {
  const pts = (k: string): [number, number][] => history.filter((r) => typeof r[k] === 'number').map((r) => [r.epoch as number, r[k] as number]);
  const valName = String(history.find((r) => typeof r.val_name === 'string')?.val_name ?? 'val');
  const loss: Series[] = [
    { name: 'train loss', color: '#1f77b4', points: pts('train_loss') },
    { name: `${valName} loss`, color: '#d62728', dash: true, points: pts('val_loss') },
  ];
  const acc: Series[] = [
    { name: 'train acc', color: '#1f77b4', points: pts('train_acc') },
    { name: `${valName} acc`, color: '#d62728', dash: true, points: pts('val_acc') },
  ];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 20}" viewBox="0 0 ${2 * W} ${H + 20}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(title)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<g transform="translate(0,20)">`,
    panel(0, 'loss', loss),
    panel(W, 'accuracy', acc),
    `</g>`,
    `<text x="${W}" y="14" text-anchor="middle" fill="#444">${esc(title)}</text>`,
    `</svg>`,
    '',
  ].join('\n');
}
