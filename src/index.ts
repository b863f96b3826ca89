// sipkit: the root entry re-exports every layer; import `sipkit/<layer>` to take only one.
export * from './parser/index.js';
export * from './digest/index.js';
export * from './transport/index.js';
export * from './transaction/index.js';
export * from './dialog/index.js';
export * from './b2bua/index.js';
export * from './resolver/index.js';
