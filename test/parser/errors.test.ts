import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import * as sipkit from '../../src/index.js';
import {
  DigestError,
  DigestServer,
  isSipError,
  parseMessage,
  SipError,
  SipParseError,
  TransportError,
  ResolverError,
  CallFailedError,
  type CallFailureCode,
  type ResolverErrorCode,
  type B2buaErrorCode,
  type DialogErrorCode,
  type DigestErrorCode,
  type SipBuildErrorCode,
  type SipErrorCode,
  type SipParseErrorCode,
  type TransactionErrorCode,
  type TransportErrorCode,
} from '../../src/index.js';

type Sipkit = typeof sipkit;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

/** One error of each class, made by `lib`. */
function samples(lib: Sipkit) {
  return {
    parse: thrown(() => lib.parseMessage('not a SIP message\r\n\r\n')),
    digest: thrown(() => new lib.DigestServer({ secret: 'short', realm: 'r', lookup: () => undefined })),
    transport: new lib.TransportError('CLOSED', 'transport is closed'),
    call: new lib.CallFailedError('RING_TIMEOUT', 'no answer', { by: 'local' }),
    plain: thrown(() => lib.createRequest({ method: 'INVITE', uri: 'not a uri', from: '<sip:a@x>', to: '<sip:b@x>' })),
  };
}

/** instanceof across two copies of sipkit, both ways. */
function expectRecognised(mine: Sipkit, theirs: Sipkit): void {
  const e = samples(theirs);
  for (const err of Object.values(e)) {
    expect(err instanceof mine.SipError).toBe(true);
    expect(mine.isSipError(err)).toBe(true);
    expect(err instanceof Error).toBe(true);
  }
  expect(e.parse instanceof mine.SipParseError).toBe(true);
  expect(e.digest instanceof mine.DigestError).toBe(true);
  expect(e.transport instanceof mine.TransportError).toBe(true);
  expect(e.call instanceof mine.CallFailedError).toBe(true);
  expect(e.call instanceof mine.TransportError).toBe(false);
  expect(e.transport instanceof mine.CallFailedError).toBe(false);
  // A brand says which class: a TransportError is no DigestError, a plain SipError no subclass.
  expect(e.transport instanceof mine.DigestError).toBe(false);
  expect(e.transport instanceof mine.SipParseError).toBe(false);
  expect(e.digest instanceof mine.TransportError).toBe(false);
  expect(e.parse instanceof mine.DigestError).toBe(false);
  expect(e.plain instanceof mine.SipParseError).toBe(false);
  expect(e.plain instanceof mine.DigestError).toBe(false);
  expect((e.digest as SipError).code).toBe('BAD_OPTION');
}

describe('errors: branded, so instanceof holds across copies of sipkit', () => {
  it('a second instance of the whole library (vi.resetModules) is a genuinely separate copy, and each recognises the other\'s errors', async () => {
    vi.resetModules();
    const other = (await import('../../src/index.js')) as Sipkit;
    // Really two copies: every class is a different object, and plain prototype checks fail.
    expect(other.SipError).not.toBe(sipkit.SipError);
    expect(other.DigestError).not.toBe(sipkit.DigestError);
    expect(other.TransportError).not.toBe(sipkit.TransportError);
    expect(other.SipParseError).not.toBe(sipkit.SipParseError);
    const foreign = samples(other).digest as object;
    expect(Object.prototype.isPrototypeOf.call(sipkit.SipError.prototype, foreign)).toBe(false);
    expectRecognised(sipkit, other);
    expectRecognised(other, sipkit);
  });

  it('errors.ts loaded twice (?copy=2): SipError and SipParseError of each copy recognise the other', async () => {
    // @ts-expect-error: tsc does not resolve the query suffix that makes vitest load a second instance
    const copy = (await import('../../src/parser/errors.ts?copy=2')) as typeof import('../../src/parser/errors.js');
    expect(copy.SipError).not.toBe(SipError);
    const a = new copy.SipParseError('BAD_URI', 'x');
    expect(a instanceof SipError).toBe(true);
    expect(a instanceof SipParseError).toBe(true);
    expect(isSipError(a)).toBe(true);
    const b = new SipError('NO_DIALOG', 'y');
    expect(b instanceof copy.SipError).toBe(true);
    expect(b instanceof copy.SipParseError).toBe(false);
    expect(copy.isSipError(b)).toBe(true);
  });

  it('is not fooled by look-alikes and keeps ordinary instanceof for a user subclass', () => {
    expect(isSipError(new Error('x'))).toBe(false);
    expect(isSipError({ code: 'BAD_URI', message: 'x' })).toBe(false);
    expect(isSipError(null)).toBe(false);
    expect(isSipError('BAD_URI')).toBe(false);
    expect({ code: 'CLOSED' } instanceof TransportError).toBe(false);
    class AppError extends SipError {}
    const mine = new AppError('NO_DIALOG', 'app');
    const theirs = new SipError('NO_DIALOG', 'lib');
    expect(mine instanceof AppError).toBe(true);
    expect(mine instanceof SipError).toBe(true);
    expect(theirs instanceof AppError).toBe(false);
    expect(new TransportError('CLOSED', 'x') instanceof AppError).toBe(false);
  });

  const dist = join(ROOT, 'dist');
  // Only a build that has the brands (an older dist/ predates isSipError).
  const built = existsSync(join(dist, 'index.cjs')) && typeof (createRequire(import.meta.url)(join(dist, 'index.cjs')) as Partial<Sipkit>).isSipError === 'function';
  it.skipIf(!built)('the CommonJS build\'s errors are recognised by the ESM build (dist/, when built)', async () => {
    const esm = (await import(pathToFileURL(join(dist, 'index.js')).href)) as Sipkit;
    const cjs = createRequire(import.meta.url)(join(dist, 'index.cjs')) as Sipkit;
    expect(cjs.SipError).not.toBe(esm.SipError);
    expectRecognised(esm, cjs);
    expectRecognised(cjs, esm);
  });
});

describe('errors: every error a user can catch is a SipError with a code', () => {
  it('new DigestServer({ secret: "short" }) throws DigestError BAD_OPTION naming the option', () => {
    const err = thrown(() => new DigestServer({ secret: 'short', realm: 'r', lookup: () => undefined }));
    expect(err).toBeInstanceOf(DigestError);
    expect(err).toMatchObject({ code: 'BAD_OPTION', message: expect.stringMatching(/secret must be at least 16 bytes \(got 5\)/) });
  });

  it('NonceCodec refuses a short secret with DigestError BAD_OPTION', () => {
    const err = thrown(() => new sipkit.NonceCodec(new Uint8Array(15), 1000, Date.now));
    expect(err).toBeInstanceOf(DigestError);
    expect((err as DigestError).code).toBe('BAD_OPTION');
  });

  it('DigestServer option mistakes fail at construction with a code', () => {
    const base = { secret: 'a-long-enough-secret-0123', realm: 'r', lookup: () => undefined };
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ realm: 'bad\r\nX-Injected: 1' }, 'BAD_OPTION', /realm/],
      [{ realm: 42 }, 'BAD_OPTION', /realm/],
      [{ lookup: undefined }, 'BAD_OPTION', /lookup/],
      [{ algorithms: [] }, 'BAD_OPTION', /algorithm/],
      [{ algorithms: ['SHA-1'] }, 'UNSUPPORTED_ALGORITHM', /SHA-1/],
      [{ qop: ['auth', 'bogus'] }, 'BAD_OPTION', /qop/],
      [{ bindNonce: 'ip' }, 'BAD_OPTION', /bindNonce/],
      [{ nonceTtlMs: -1 }, 'BAD_OPTION', /nonceTtlMs/],
      [{ replayTableSize: 0 }, 'BAD_OPTION', /replayTableSize/],
      [{ ncWindow: 1.5 }, 'BAD_OPTION', /ncWindow/],
      [{ throttle: { tableSize: 0 } }, 'BAD_OPTION', /throttle\.tableSize/],
      [{ throttle: { blockMs: Number.NaN } }, 'BAD_OPTION', /throttle\.blockMs/],
      [{ secret: 12345678901234567890 }, 'BAD_OPTION', /secret/],
    ];
    for (const [patch, code, message] of cases) {
      const err = thrown(() => new DigestServer({ ...base, ...patch } as never));
      expect(err, JSON.stringify(patch)).toBeInstanceOf(DigestError);
      expect((err as DigestError).code, JSON.stringify(patch)).toBe(code);
      expect((err as DigestError).message).toMatch(message);
    }
    expect(thrown(() => new DigestServer(undefined as never))).toMatchObject({ code: 'BAD_OPTION' });
    expect(() => new DigestServer({ ...base, throttle: false, qop: ['auth', 'auth-int'], algorithms: ['MD5'] })).not.toThrow();
  });

  it('no throw or rejection in src/ uses a class that is not a SipError', () => {
    const sipErrors = new Set(['SipError', 'SipParseError', 'DigestError', 'TransportError', 'ResolverError', 'CallFailedError']);
    // LruMap's capacity comes only from DigestServer options (checked first) and constants.
    const allowed = new Set(['src/util/lru.ts:RangeError']);
    const found: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.ts')) {
          const rel = path.slice(ROOT.length).replace(/\\/g, '/');
          for (const m of readFileSync(path, 'utf8').matchAll(/(?:throw new|reject\(new|onError\(new)\s+([A-Za-z_$][\w$]*)/g)) {
            const cls = m[1]!;
            if (!sipErrors.has(cls) && !allowed.has(`${rel}:${cls}`)) found.push(`${rel}: ${m[0]}`);
          }
        }
      }
    };
    walk(join(ROOT, 'src'));
    expect(found).toEqual([]);
  });
});

describe('errors: codes are typed unions', () => {
  it('SipError.code is the union of every code, each subclass narrows it', () => {
    expectTypeOf<SipError['code']>().toEqualTypeOf<SipErrorCode>();
    expectTypeOf<SipErrorCode>().not.toEqualTypeOf<string>();
    expectTypeOf<SipParseError['code']>().toEqualTypeOf<SipParseErrorCode>();
    expectTypeOf<DigestError['code']>().toEqualTypeOf<DigestErrorCode>();
    expectTypeOf<TransportError['code']>().toEqualTypeOf<TransportErrorCode>();
    expectTypeOf<SipBuildErrorCode | TransactionErrorCode | DialogErrorCode | B2buaErrorCode | CallFailureCode | DigestErrorCode | TransportErrorCode | SipParseErrorCode | ResolverErrorCode>().toEqualTypeOf<SipErrorCode>();
    expectTypeOf<ResolverError['code']>().toEqualTypeOf<ResolverErrorCode>();
    expectTypeOf<CallFailedError['code']>().toEqualTypeOf<CallFailureCode>();
    expectTypeOf<'BAD_OPTION'>().toExtend<DigestErrorCode>();
    expectTypeOf<'NO_DIALOG'>().toExtend<DialogErrorCode>();
    // @ts-expect-error: not a sipkit code
    const e = new SipError('NOT_A_CODE', 'x');
    expect(e.code).toBe('NOT_A_CODE');
    const err: unknown = thrown(() => parseMessage(''));
    if (isSipError(err)) expectTypeOf(err.code).toEqualTypeOf<SipErrorCode>();
    expect(isSipError(err) && err.code).toBe('EMPTY');
  });

  it('errors serialize with name, code, message and their fields', () => {
    const err = thrown(() => parseMessage('INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nContent-Length: x\r\n\r\n'));
    expect(JSON.parse(JSON.stringify(err))).toEqual({ name: 'SipParseError', code: 'BAD_CONTENT_LENGTH', message: 'bad Content-Length: "x"', header: 'content-length' });
    const t = new TransportError('CLOSED', 'transport is closed', { address: '127.0.0.1', port: 5060 }, new Error('inner'));
    expect(JSON.parse(JSON.stringify(t))).toEqual({ name: 'TransportError', code: 'CLOSED', message: 'transport is closed', remote: { address: '127.0.0.1', port: 5060 } });
  });
});
