import { type ChildProcess, spawn } from 'node:child_process';

/** One line a child printed as `<TAG> <json>`. */
export interface TaggedLine {
  readonly tag: string;
  readonly data: Record<string, unknown>;
}

export interface TaggedChild {
  readonly proc: ChildProcess;
  /** Every `<TAG> <json>` line printed so far, in order. */
  readonly lines: TaggedLine[];
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** What the child wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the first `n` lines tagged `tag`; rejects after `timeoutMs` or when the child failed. */
  waitFor(tag: string, n?: number, timeoutMs?: number): Promise<TaggedLine[]>;
}

/**
 * Runs `node <script> ...args` and collects the lines it prints as `<TAG> <json>` — the way the
 * multi-process tests talk to their child processes.
 */
export function spawnTaggedChild(script: string, args: readonly string[], options: { cwd?: string } = {}): TaggedChild {
  const proc = spawn(process.execPath, [script, ...args], { ...(options.cwd ? { cwd: options.cwd } : {}), stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: TaggedLine[] = [];
  let buf = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const sp = line.indexOf(' ');
      if (sp > 0) lines.push({ tag: line.slice(0, sp), data: JSON.parse(line.slice(sp + 1)) as Record<string, unknown> });
    }
  });
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const waitFor = async (tag: string, n = 1, timeoutMs = 20_000): Promise<TaggedLine[]> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const got = lines.filter((l) => l.tag === tag);
      if (got.length >= n) return got;
      if (proc.exitCode !== null && proc.exitCode !== 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`child did not print ${n}× ${tag}; lines ${JSON.stringify(lines)}; stderr ${err}`);
  };
  return { proc, lines, exited, stderr: () => err, waitFor };
}
