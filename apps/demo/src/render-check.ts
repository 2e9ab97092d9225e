// Checks that an HTML report renders in headless Chromium: a screenshot is taken and its pixels
// must show the charts (the path colours of the SVG bars and lines), not a blank or broken page.
// Chromium is optional on a developer machine; callers skip when findChromium() returns undefined.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';
import { COLORS } from './render.js';

const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable', 'chrome'];

/** The Chromium binary: `$CHROMIUM` if set, else the first candidate on PATH. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env['CHROMIUM']) return existsSync(env['CHROMIUM']) ? env['CHROMIUM'] : undefined;
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    for (const name of CANDIDATES) {
      if (dir && existsSync(join(dir, name))) return join(dir, name);
    }
  }
  return undefined;
}

/** Renders `htmlPath` headless to a PNG and returns the PNG's bytes. */
export function screenshot(chromium: string, htmlPath: string, size = { width: 1200, height: 2400 }): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'strata-render-'));
  try {
    const png = join(dir, 'report.png');
    const r = spawnSync(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        `--user-data-dir=${join(dir, 'profile')}`,
        `--screenshot=${png}`,
        `--window-size=${size.width},${size.height}`,
        pathToFileURL(resolve(htmlPath)).href,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (!existsSync(png)) throw new Error(`chromium wrote no screenshot (exit ${r.status}${r.error ? `, ${r.error.message}` : ''}): ${r.stderr.slice(-500)}`);
    return readFileSync(png);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Pixels {
  width: number;
  height: number;
  /** RGB triples, row by row. */
  rgb: Uint8Array;
}

/** Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes). */
export function decodePng(png: Buffer): Pixels {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8];
      const colour = data[9];
      if (depth !== 8 || (colour !== 2 && colour !== 6) || data[12] !== 0)
        throw new Error(`unsupported PNG (depth ${depth}, colour type ${colour}, interlace ${data[12]})`);
      channels = colour === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const cur = new Uint8Array(stride);
  const prev = new Uint8Array(stride);
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const base = y * (stride + 1);
    const filter = raw[base]!;
    for (let i = 0; i < stride; i++) {
      const x = raw[base + 1 + i]!;
      const a = i >= channels ? cur[i - channels]! : 0;
      const b = prev[i]!;
      const c = i >= channels ? prev[i - channels]! : 0;
      let v: number;
      if (filter === 0) v = x;
      else if (filter === 1) v = x + a;
      else if (filter === 2) v = x + b;
      else if (filter === 3) v = x + ((a + b) >> 1);
      else {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
      cur[i] = v & 0xff;
    }
    for (let px = 0; px < width; px++) {
      rgb.set(cur.subarray(px * channels, px * channels + 3), (y * width + px) * 3);
    }
    prev.set(cur);
  }
  return { width, height, rgb };
}

/** Pixels within `tolerance` per channel of `#rrggbb`. */
export function countColour(p: Pixels, hex: string, tolerance = 8): number {
  const r = parseInt(hex.slice(1, 3), 16);
  const g = parseInt(hex.slice(3, 5), 16);
  const b = parseInt(hex.slice(5, 7), 16);
  let n = 0;
  for (let i = 0; i < p.rgb.length; i += 3) {
    if (Math.abs(p.rgb[i]! - r) <= tolerance && Math.abs(p.rgb[i + 1]! - g) <= tolerance && Math.abs(p.rgb[i + 2]! - b) <= tolerance) n++;
  }
  return n;
}

export interface RenderCheck {
  ok: boolean;
  problems: string[];
  /** Pixels of each path colour in the screenshot. */
  colours: Record<string, number>;
  png: Buffer;
}

/**
 * Renders the report and checks the page is there: the screenshot has the requested size, is
 * not one flat colour, and shows the L1 and upstream colours over a real area (the stacked bars,
 * latency bars and savings lines are SVG: if they did not render, those colours are missing).
 */
export function checkReportRenders(chromium: string, htmlPath: string, opts: { minPixels?: number } = {}): RenderCheck {
  const png = screenshot(chromium, htmlPath);
  const p = decodePng(png);
  const problems: string[] = [];
  if (p.width !== 1200 || p.height !== 2400) problems.push(`screenshot is ${p.width}×${p.height}, expected 1200×2400`);
  const colours: Record<string, number> = {};
  for (const [path, hex] of Object.entries(COLORS)) colours[path] = countColour(p, hex);
  const min = opts.minPixels ?? 2000;
  for (const path of ['L1', 'upstream']) {
    if ((colours[path] ?? 0) < min) problems.push(`only ${colours[path]} pixels of the ${path} colour ${COLORS[path]} (charts not rendered?)`);
  }
  const first = p.rgb.subarray(0, 3);
  let differs = 0;
  for (let i = 3; i < p.rgb.length; i += 3) if (p.rgb[i] !== first[0] || p.rgb[i + 1] !== first[1] || p.rgb[i + 2] !== first[2]) differs++;
  if (differs < p.width * p.height * 0.05) problems.push('the page is (almost) one flat colour');
  return { ok: problems.length === 0, problems, colours, png };
}
