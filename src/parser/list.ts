import { trimLws } from './chars.js';

/** Index of the next comma at or after `from` that separates list elements (outside quotes and `<...>`), or -1. */
function nextSeparator(value: string, from: number): number {
  let inQuote = false;
  let inAngle = false;
  for (let i = from; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 92) i++;
      else if (c === 34) inQuote = false;
    } else if (c === 34) inQuote = true;
    else if (c === 60) inAngle = true;
    else if (c === 62) inAngle = false;
    else if (c === 44 && !inAngle) return i;
  }
  return -1;
}

/**
 * Split a header value into its comma-separated elements (RFC 3261 §7.3.1),
 * respecting quoted strings (with escapes) and `<...>` URIs, which may hold commas.
 * Elements are trimmed; empty elements between commas are kept (so a typed parser
 * can reject them) but an entirely empty value yields no element.
 */
export function splitList(value: string): string[] {
  if (value.indexOf(',') < 0) {
    const t = trimLws(value);
    return t.length === 0 ? [] : [t];
  }
  const out: string[] = [];
  let start = 0;
  for (let sep = nextSeparator(value, 0); sep >= 0; sep = nextSeparator(value, start)) {
    out.push(trimLws(value.slice(start, sep)));
    start = sep + 1;
  }
  out.push(trimLws(value.slice(start)));
  return out;
}

/** The first element of a list value, without splitting the rest. */
export function firstOfList(value: string): string {
  if (value.indexOf(',') < 0) return trimLws(value);
  const sep = nextSeparator(value, 0);
  return trimLws(sep < 0 ? value : value.slice(0, sep));
}
