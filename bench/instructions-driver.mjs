// Run under valgrind by bench/instructions.ts: one case, a given number of messages.
// Plain JavaScript so that nothing but the measured work runs in the measured process.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const [, , which, itersArg, corpusFile] = process.argv;
const iters = Number(itersArg);
const corpus = JSON.parse(readFileSync(corpusFile, 'utf8')).map((b64) => Buffer.from(b64, 'base64'));
const n = corpus.length;
const require = createRequire(import.meta.url);
let run;
if (which === 'floor') {
  run = (i) => corpus[i % n].toString('utf8').split('\r\n').length;
} else if (which === 'sipkit-parse') {
  const { parseMessage } = await import('../dist/parser/index.js');
  run = (i) => parseMessage(corpus[i % n]).headerCount;
} else if (which.startsWith('sipkit')) {
  const { parseMessage } = await import('../dist/parser/index.js');
  const serialize = which.endsWith('serialize');
  run = (i) => {
    const m = parseMessage(corpus[i % n]);
    const r = m.via.length + (m.from.tag?.length ?? 0) + (m.to.tag?.length ?? 0) + m.cseq.seq + m.callId.length;
    return serialize ? r + m.toBytes().length : r;
  };
} else if (which.startsWith('sip')) {
  const sip = require('./node_modules/sip/sip.js');
  const serialize = which.endsWith('serialize');
  run = (i) => {
    const m = sip.parse(corpus[i % n]);
    const h = m.headers;
    const r = h.via.length + (h.from.params.tag?.length ?? 0) + (h.to.params.tag?.length ?? 0) + h.cseq.seq + h['call-id'].length;
    return serialize ? r + sip.stringify(m).length : r;
  };
} else {
  throw new Error(`unknown case ${which}`);
}
let sink = 0;
for (let i = 0; i < iters; i++) sink += run(i);
if (sink === -1) console.log(sink);
