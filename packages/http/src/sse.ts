import type { RecordedEvent, ReplayPacing } from './types.js';

const enc = new TextEncoder();

/** One event in the wire form providers send (`event:` line, `data:` lines, blank line). */
export function serializeEvent(e: Pick<RecordedEvent, 'event' | 'data'>): string {
  let out = e.event !== undefined ? `event: ${e.event}\n` : '';
  for (const line of e.data.split('\n')) out += `data: ${line}\n`;
  return out + '\n';
}

/** Incremental SSE parser (WHATWG event-stream rules; comments and `retry` ignored). */
export class SseParser {
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private event: string | undefined;
  private data: string[] = [];
  private readonly events: RecordedEvent[] = [];

  /** Parses the next bytes; returns the events they completed (every event so far is in `end()`'s result). */
  push(bytes: Uint8Array, t: number): RecordedEvent[] {
    const before = this.events.length;
    this.buffer += this.decoder.decode(bytes, { stream: true });
    this.drain(t);
    return this.events.slice(before);
  }

  end(t: number): RecordedEvent[] {
    this.buffer += this.decoder.decode();
    this.drain(t);
    // A final event without its blank line was cut off: drop it.
    return this.events;
  }

  private drain(t: number): void {
    const buf = this.buffer;
    const eol = /\r\n|\r|\n/g;
    let start = 0;
    for (let m = eol.exec(buf); m; m = eol.exec(buf)) {
      // A lone '\r' at the end may be the first half of '\r\n': wait for more bytes.
      if (m[0] === '\r' && m.index === buf.length - 1) break;
      this.line(buf.slice(start, m.index), t);
      start = m.index + m[0].length;
    }
    if (start > 0) this.buffer = buf.slice(start);
  }

  private line(line: string, t: number): void {
    if (line === '') {
      if (this.data.length > 0 || this.event !== undefined) {
        this.events.push({ ...(this.event !== undefined ? { event: this.event } : {}), data: this.data.join('\n'), t: Math.round(t) });
      }
      this.event = undefined;
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
  }
}

/** A stream of recorded events in wire form, paced as asked; errors when `signal` aborts. */
export function replaySse(events: readonly RecordedEvent[], pacing: ReplayPacing, signal: AbortSignal | undefined): ReadableStream<Uint8Array> {
  let i = 0;
  let prevT = 0;
  const { mode, maxGapMs } = pacing;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (signal?.aborted) {
        controller.error(signal.reason ?? new DOMException('The operation was aborted.', 'AbortError'));
        return;
      }
      if (i >= events.length) {
        controller.close();
        return;
      }
      const e = events[i++]!;
      if (mode !== 'none' && i > 1) {
        const gap = mode === 'recorded' ? Math.min(maxGapMs, Math.max(0, e.t - prevT)) : mode;
        if (gap > 0) await sleep(gap, signal);
      }
      prevT = e.t;
      controller.enqueue(enc.encode(serializeEvent(e)));
    },
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
