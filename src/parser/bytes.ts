// Buffer's own slice decoders skip toString()'s argument juggling; fall back where absent.
type SlicingBuffer = Buffer & {
  utf8Slice(s: number, e: number): string;
  latin1Slice(s: number, e: number): string;
  latin1Write(s: string, offset: number, length: number): number;
};
const hasSlices = typeof (Buffer.prototype as Partial<SlicingBuffer>).utf8Slice === 'function';

export function decodeUtf8(buf: Buffer, start: number, end: number): string {
  return hasSlices ? (buf as SlicingBuffer).utf8Slice(start, end) : buf.toString('utf8', start, end);
}

/** One character per byte: offsets into the result are byte offsets. */
export function decodeLatin1(buf: Buffer, start: number, end: number): string {
  return hasSlices ? (buf as SlicingBuffer).latin1Slice(start, end) : buf.toString('latin1', start, end);
}

const hasLatin1Write = typeof (Buffer.prototype as Partial<SlicingBuffer>).latin1Write === 'function';

/** `s` (all of whose characters are below 256) into `buf` from 0, a byte per character. */
export function encodeLatin1(buf: Buffer, s: string, length: number): void {
  if (hasLatin1Write) (buf as SlicingBuffer).latin1Write(s, 0, length);
  else buf.write(s, 0, length, 'latin1');
}
