import { describe, expect, it } from 'vitest';
import { SseParser, serializeEvent } from '../src/sse.js';

const enc = new TextEncoder();

describe('SseParser', () => {
  it('parses events split at any byte, with CRLF, CR or LF line ends, comments and multi-line data', () => {
    const text = ': comment\r\nevent: a\r\ndata: {"x":1}\r\n\r\ndata: line1\rdata: line2\r\rdata: [DONE]\n\n' + 'data: é😀\n\n';
    const bytes = enc.encode(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const p = new SseParser();
      p.push(bytes.slice(0, cut), 0);
      p.push(bytes.slice(cut), 1);
      expect(p.end(2).map(({ event, data }) => ({ event, data }))).toEqual([
        { event: 'a', data: '{"x":1}' },
        { event: undefined, data: 'line1\nline2' },
        { event: undefined, data: '[DONE]' },
        { event: undefined, data: 'é😀' },
      ]);
    }
  });

  it('drops a final event that lacks its blank line (a cut-off stream)', () => {
    const p = new SseParser();
    p.push(enc.encode('data: one\n\ndata: two\n'), 0);
    expect(p.end(1).map((e) => e.data)).toEqual(['one']);
  });

  it('serializeEvent round-trips through the parser', () => {
    const events = [{ event: 'message_start', data: '{"a":"b"}' }, { data: 'multi\nline' }];
    const p = new SseParser();
    p.push(enc.encode(events.map(serializeEvent).join('')), 0);
    expect(p.end(0).map(({ event, data }) => (event === undefined ? { data } : { event, data }))).toEqual(events);
  });
});
