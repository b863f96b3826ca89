import { benchB2bua } from './b2bua.js';
import { benchDigest } from './digest.js';
import { benchParser } from './parser.js';
import { benchResolver } from './resolver.js';
import { benchTransaction } from './transaction.js';

const only = process.argv[2];
console.log(`sipkit benchmarks — node ${process.version}, ${new Date().toISOString()}`);
console.log('Every figure is a rate measured in this run; ratios compare cases of the same run.');
if (!only || only === 'parser') console.log(benchParser());
if (!only || only === 'digest') console.log(await benchDigest());
if (!only || only === 'transaction') console.log(await benchTransaction());
if (!only || only === 'b2bua') console.log(await benchB2bua());
if (!only || only === 'resolver') console.log(benchResolver());
