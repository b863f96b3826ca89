import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ownText } from '../../src/util/own.js';

describe('ownText', () => {
  it('gives back the same characters, short or long, any UTF-16 (a lone surrogate too)', () => {
    for (const s of ['', 'a', 'abcdefghijkl', 'abcdefghijklm', 'Call-ID: 1234567890@example.com', 'é'.repeat(40), '\ud800abcdefghijklmnop\udfff', '😀'.repeat(20)]) {
      expect(ownText(s)).toBe(s);
    }
  });

  it('keeps only its own characters: 2 000 copies of a slice of a 4 KB text do not keep the texts', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const text = (i: number) => `Call-ID: kept-${i}-0123456789@example.com\r\n` + 'p'.repeat(4096) + String(i);
    const kept: string[] = [];
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 2000; i++) {
      // A fresh text each time (not a constant V8 could share), sliced as the parser slices a header value.
      const t = text(i);
      t.charCodeAt(0);
      kept.push(ownText(t.slice(9, t.indexOf('\r'))));
    }
    gc();
    const perString = (process.memoryUsage().heapUsed - before) / 2000;
    expect(kept[1999]).toBe('kept-1999-0123456789@example.com');
    expect(perString).toBeLessThan(1024);
  });
});
