// Checks a calibration snapshot before anything of it is used: a damaged or foreign snapshot
// is refused whole (the calibrator keeps its own state).
import { InvalidOptionError } from '@strata-cache/core';
import { AB, CONTEXTS, SB } from './mixture.js';
import { PKG } from './options.js';
import type { CalibrationSnapshot } from './types.js';

/** The snapshot, typed, or a thrown InvalidOptionError naming what is wrong. */
export function checkSnapshot(snapshot: unknown): CalibrationSnapshot {
  const s = snapshot as Partial<CalibrationSnapshot> | null;
  const bad = (why: string) => new InvalidOptionError(`${PKG}: not a calibration snapshot (${why})`, { field: 'snapshot' });
  if (!s || typeof s !== 'object' || s.format !== 'strata-calibration') throw bad('format');
  if (s.version !== 1) throw bad(`version ${String(s.version)}`);
  const finiteArray = (x: unknown, n: number) => Array.isArray(x) && x.length === n && x.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0);
  if (!finiteArray(s.judged, CONTEXTS * SB * AB)) throw bad('judged counts');
  if (!finiteArray(s.labelled, CONTEXTS * SB * 2)) throw bad('labelled counts');
  if (
    !Array.isArray(s.entries) ||
    !s.entries.every(
      (e) =>
        Array.isArray(e) &&
        typeof e[0] === 'string' &&
        Array.isArray(e[1]) &&
        e[1].length % 5 === 0 &&
        e[1].every((v) => typeof v === 'number' && Number.isFinite(v)),
    )
  )
    throw bad('entries');
  if (!Array.isArray(s.recent) || !s.recent.every((v) => typeof v === 'number' && v >= 0 && v <= 1)) throw bad('recent');
  if (typeof s.cutoff !== 'number' || !(s.cutoff >= 0 && s.cutoff <= 1) || typeof s.tokens !== 'number' || !Number.isFinite(s.tokens)) throw bad('cut-off');
  if (!s.counters || typeof s.counters !== 'object') throw bad('counters');
  if (s.audit !== undefined && !(typeof s.audit === 'object' && s.audit !== null && s.audit.found >= 0 && s.audit.expected >= 0)) throw bad('audit');
  const m = s.model;
  const rows = (x: unknown, n: number) => Array.isArray(x) && x.length === CONTEXTS && x.every((r) => finiteArray(r, n));
  if (!m || !rows(m.pi, SB) || !rows(m.binWeight, SB) || !finiteArray(m.fR, AB) || !finiteArray(m.fW, AB)) throw bad('model');
  return s as CalibrationSnapshot;
}
