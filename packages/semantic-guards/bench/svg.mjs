// Tiny dependency-free SVG line charts for the benchmark's markdown (frontiers per domain).

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const COLORS = ['#6b7280', '#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c'];

/**
 * @param {object} o
 * @param {string} o.title
 * @param {string} o.xLabel
 * @param {string} o.yLabel
 * @param {Array<{ name: string, points: Array<[number, number]>, marker?: boolean }>} o.series  points as [x, y]
 * @param {number} [o.xMax] @param {number} [o.yMax]
 * @param {number} [o.budget] a vertical dashed line at this x
 */
export function frontierSvg({ title, xLabel, yLabel, series, xMax, yMax, budget }) {
  const W = 520,
    H = 330,
    L = 58,
    R = 150,
    T = 30,
    B = 46;
  const pw = W - L - R,
    ph = H - T - B;
  const all = series.flatMap((s) => s.points);
  const xm = xMax ?? niceMax(Math.max(...all.map((p) => p[0]), budget ?? 0) || 1);
  const ym = yMax ?? niceMax(Math.max(...all.map((p) => p[1])) || 1);
  const X = (x) => L + (Math.min(x, xm) / xm) * pw;
  const Y = (y) => T + ph - (Math.min(y, ym) / ym) * ph;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${L}" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const xv = (xm * i) / 4,
      yv = (ym * i) / 4;
    out.push(`<line x1="${X(xv)}" y1="${T}" x2="${X(xv)}" y2="${T + ph}" stroke="#eee"/>`);
    out.push(`<line x1="${L}" y1="${Y(yv)}" x2="${L + pw}" y2="${Y(yv)}" stroke="#eee"/>`);
    out.push(`<text x="${X(xv)}" y="${T + ph + 14}" text-anchor="middle">${fmt(xv)}</text>`);
    out.push(`<text x="${L - 6}" y="${Y(yv) + 4}" text-anchor="end">${fmt(yv)}</text>`);
  }
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  out.push(`<text x="${L + pw / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text x="14" y="${T + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${T + ph / 2})">${esc(yLabel)}</text>`);
  if (budget !== undefined)
    out.push(
      `<line x1="${X(budget)}" y1="${T}" x2="${X(budget)}" y2="${T + ph}" stroke="#000" stroke-dasharray="4 3"/><text x="${X(budget) + 3}" y="${T + 10}">budget</text>`,
    );
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    if (!s.marker && pts.length > 1)
      out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts)
      out.push(
        s.marker
          ? `<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="5" fill="${c}" stroke="white"/>`
          : `<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="2" fill="${c}"/>`,
      );
    const ly = T + 8 + i * 16;
    out.push(
      `<line x1="${L + pw + 10}" y1="${ly}" x2="${L + pw + 26}" y2="${ly}" stroke="${c}" stroke-width="${s.marker ? 0 : 2}"/>${s.marker ? `<circle cx="${L + pw + 18}" cy="${ly}" r="4" fill="${c}"/>` : ''}<text x="${L + pw + 30}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('');
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1).replace(/\.0$/, '') : Number(v.toPrecision(2)).toString());
