// A strict parser of the Prometheus text exposition format, for the metrics tests.
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A parser of the Prometheus text exposition format 0.0.4, strict where the format is: # HELP
 * and # TYPE at most once per family and before its samples, metric and label names as the
 * format spells them, label values with \\ \" \n escapes only, one sample per series, numeric
 * values, samples of a family together. Throws on anything else.
 */
export function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string>; help: Map<string, string> } {
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const series = new Set<string>();
  const done = new Set<string>();
  let current: string | undefined;
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (!m) {
        if (/^# (HELP|TYPE)/.test(line)) throw new Error(`malformed ${where}`);
        return; // a plain comment
      }
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`bad metric name, ${where}`);
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type, ${where}`);
        if (types.has(name)) throw new Error(`second TYPE, ${where}`);
        if (samples.some((s) => s.name === name)) throw new Error(`TYPE after samples, ${where}`);
        types.set(name, rest);
      } else {
        if (help.has(name)) throw new Error(`second HELP, ${where}`);
        if (/\\(?![\\n])/.test(rest)) throw new Error(`bad escape in HELP, ${where}`);
        help.set(name, rest);
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!m) throw new Error(`malformed sample, ${where}`);
    const [, name, labelText, valueText] = m as unknown as [string, string, string | undefined, string];
    const labels: Record<string, string> = {};
    if (labelText) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
      let at = 0;
      while (at < labelText.length) {
        re.lastIndex = at;
        const l = re.exec(labelText);
        if (!l) throw new Error(`malformed labels, ${where}`);
        if (l[1]! in labels) throw new Error(`label twice, ${where}`);
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        at = re.lastIndex;
        if (l[3] === '' && at < labelText.length) throw new Error(`trailing label text, ${where}`);
      }
    }
    const value = /^(NaN|[+-]Inf)$/.test(valueText) ? NaN : Number(valueText);
    if (!/^(NaN|[+-]Inf)$/.test(valueText) && (valueText === '' || !Number.isFinite(value))) throw new Error(`bad value, ${where}`);
    const family = [...types.keys()].find((t) => name === t || ((types.get(t) === 'summary' || types.get(t) === 'histogram') && name.startsWith(t + '_')));
    if (!family) throw new Error(`sample without a TYPE, ${where}`);
    if (family !== current) {
      if (done.has(family)) throw new Error(`samples of ${family} not together, ${where}`);
      if (current) done.add(current);
      current = family;
    }
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (series.has(key)) throw new Error(`series twice, ${where}`);
    series.add(key);
    if (types.get(family) === 'counter' && !name.endsWith('_total')) throw new Error(`counter not named _total, ${where}`);
    if (types.get(family) === 'counter' && value < 0) throw new Error(`negative counter, ${where}`);
    samples.push({ name, labels, value });
  });
  return { samples, types, help };
}

/** The value of one series (0 when absent). */
export function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v) && Object.keys(x.labels).length === Object.keys(labels).length);
  return s?.value ?? 0;
}
