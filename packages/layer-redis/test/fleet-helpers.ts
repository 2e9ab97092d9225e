import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type TaggedChild, spawnTaggedChild } from '@strata-cache/test-utils';

const here = dirname(fileURLToPath(import.meta.url));
export const pkg = join(here, '..');
const script = join(here, 'fixtures', 'semantic-node.mjs');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The children import the built package: build it from the current sources. */
export function buildPackage(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: pkg, stdio: 'inherit' });
}

export interface NodeConfig {
  url?: string;
  cluster?: Array<{ host: string; port: number }>;
  prefix: string;
  persistDir?: string;
  snapshotIntervalMs?: number;
  feed?: Record<string, unknown>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Reply = Record<string, any>;

/** One fleet process (test/fixtures/semantic-node.mjs), driven over stdin/stdout. */
export class FleetProcess {
  private next = 0;
  private constructor(
    readonly child: TaggedChild,
    readonly config: NodeConfig,
  ) {}

  static async start(config: NodeConfig): Promise<FleetProcess> {
    const child = spawnTaggedChild(script, [JSON.stringify(config)], { cwd: pkg });
    await child.waitFor('READY', 1, 30_000);
    return new FleetProcess(child, config);
  }

  async call(op: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<Reply> {
    const id = ++this.next;
    this.child.proc.stdin!.write(JSON.stringify({ id, op, ...args }) + '\n');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.child.lines.find((l) => l.tag === 'RES' && l.data.id === id);
      if (line) {
        if (!line.data.ok) throw new Error(`${op} failed in child: ${line.data.error}`);
        return line.data;
      }
      if (this.child.proc.exitCode !== null || this.child.proc.signalCode !== null) throw new Error(`child exited during ${op}: ${this.child.stderr()}`);
      if (Date.now() > deadline) throw new Error(`${op} got no answer within ${timeoutMs} ms; stderr: ${this.child.stderr()}`);
      await sleep(5);
    }
  }

  /** kill -9: no snapshot, no flush. */
  async kill9(): Promise<void> {
    this.child.proc.kill('SIGKILL');
    await this.child.exited;
  }

  async close(): Promise<void> {
    if (this.child.proc.exitCode !== null || this.child.proc.signalCode !== null) return;
    await this.call('close').catch(() => undefined);
    await Promise.race([this.child.exited, sleep(10_000)]);
    this.child.proc.kill('SIGKILL');
  }
}

/** Polls `fn` until it returns true; throws (with the last value seen) after `ms`. */
export async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${ms} ms; last ${JSON.stringify(last)?.slice(0, 2_000)}`);
    await sleep(50);
  }
}
