import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SNAPSHOT_FORMAT = 'strata-semantic-snapshot';
export const SNAPSHOT_VERSION = 1;
const CURRENT = 'CURRENT';

export interface SnapshotFile {
  readonly name: string;
  /** Contents; absent when the capture step already wrote the file (hnswlib's writeIndexSync). */
  readonly data?: Buffer | string;
}

export interface SnapshotCapture {
  readonly files: readonly SnapshotFile[];
  readonly manifest: Omit<Manifest, 'files' | 'format' | 'version'>;
}

export interface Manifest {
  format: string;
  version: number;
  createdAt: number;
  /** Must match the layer's embedder and dimensions, or the snapshot is discarded. */
  embedderId: string;
  dimensions: number;
  records: number;
  /** Offset in the replication feed that the snapshot's state includes (absent without a feed). */
  feedOffset?: string;
  files: Record<string, { bytes: number; sha256: string }>;
}

/** Why a snapshot was not loaded. */
export class SnapshotRejected extends Error {}

/**
 * Writes a snapshot atomically: every file goes into a fresh temporary directory with its size
 * and SHA-256 in `manifest.json` (written last), the directory is renamed into place, and only
 * then is the one-line `CURRENT` pointer replaced (write + fsync + rename). A crash at any
 * point leaves the previous snapshot current; old snapshot directories are removed after.
 */
export async function writeSnapshot(dir: string, capture: (tmp: string) => SnapshotCapture): Promise<string> {
  await mkdir(dir, { recursive: true });
  const tag = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const tmp = join(dir, `.tmp-${process.pid}-${tag}`);
  // No await between creating the directory and the capture: the state it records is the
  // state of one event-loop turn, graphs included.
  mkdirSync(tmp);
  try {
    const { files, manifest } = capture(tmp);
    const sums: Manifest['files'] = {};
    for (const f of files) {
      const path = join(tmp, f.name);
      if (f.data !== undefined) await writeFile(path, f.data);
      await fsyncPath(path);
      sums[f.name] = { bytes: (await stat(path)).size, sha256: await sha256File(path) };
    }
    const full: Manifest = { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, ...manifest, files: sums };
    await writeFile(join(tmp, 'manifest.json'), JSON.stringify(full));
    await fsyncPath(join(tmp, 'manifest.json'));
    await fsyncPath(tmp);
    const name = `snap-${tag}`;
    await rename(tmp, join(dir, name));
    const pointer = join(dir, `${CURRENT}.${tag}.tmp`);
    await writeFile(pointer, name + '\n');
    await fsyncPath(pointer);
    await rename(pointer, join(dir, CURRENT));
    await fsyncPath(dir);
    await removeStale(dir, name);
    return join(dir, name);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

export interface OpenSnapshot {
  readonly path: string;
  readonly manifest: Manifest;
  file(name: string): string;
  read(name: string): Promise<Buffer>;
}

/**
 * Opens the current snapshot and verifies it whole (format, embedder, every file's size and
 * checksum) before anything is loaded. Resolves undefined when there is none; throws
 * SnapshotRejected when it is torn or does not match.
 */
export async function openSnapshot(dir: string, expect: { embedderId: string; dimensions: number }): Promise<OpenSnapshot | undefined> {
  let name: string;
  try {
    name = (await readFile(join(dir, CURRENT), 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if (!/^snap-[a-z0-9-]+$/.test(name)) throw new SnapshotRejected(`CURRENT does not name a snapshot (${JSON.stringify(name.slice(0, 40))})`);
  const path = join(dir, name);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(join(path, 'manifest.json'), 'utf8')) as Manifest;
  } catch (e) {
    throw new SnapshotRejected(`${name}/manifest.json is missing or unreadable (${(e as Error).message})`);
  }
  if (manifest.format !== SNAPSHOT_FORMAT || manifest.version !== SNAPSHOT_VERSION) {
    throw new SnapshotRejected(`${name} has format ${manifest.format} v${manifest.version}, expected ${SNAPSHOT_FORMAT} v${SNAPSHOT_VERSION}`);
  }
  if (manifest.embedderId !== expect.embedderId || manifest.dimensions !== expect.dimensions) {
    throw new SnapshotRejected(
      `${name} was built with embedder "${manifest.embedderId}" (${manifest.dimensions}-d), this layer uses "${expect.embedderId}" (${expect.dimensions}-d)`,
    );
  }
  for (const [file, sum] of Object.entries(manifest.files ?? {})) {
    const p = join(path, file);
    let size: number;
    try {
      size = (await stat(p)).size;
    } catch {
      throw new SnapshotRejected(`${name}/${file} is missing`);
    }
    if (size !== sum.bytes) throw new SnapshotRejected(`${name}/${file} has ${size} bytes, the manifest says ${sum.bytes} (torn write?)`);
    if ((await sha256File(p)) !== sum.sha256) throw new SnapshotRejected(`${name}/${file} fails its checksum`);
  }
  return {
    path,
    manifest,
    file: (f) => join(path, f),
    read: (f) => readFile(join(path, f)),
  };
}

/** Removes the current snapshot (after it was rejected) so it is not tried again. */
export async function discardSnapshot(dir: string): Promise<void> {
  await rm(join(dir, CURRENT), { force: true });
  await removeStale(dir, undefined);
}

async function removeStale(dir: string, keep: string | undefined): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (n === keep) continue;
    // Other processes' in-flight temp dirs carry their pid; leave those of live writers alone.
    if (n.startsWith('.tmp-')) {
      const pid = Number(n.split('-')[1]);
      if (pid !== process.pid && isAlive(pid)) continue;
    } else if (!n.startsWith('snap-') && !(n.startsWith(`${CURRENT}.`) && n.endsWith('.tmp'))) continue;
    await rm(join(dir, n), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } catch {
    // some filesystems refuse fsync on directories
  } finally {
    await fh.close();
  }
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
