import { ConfigError, defaultConfig, loadConfig, type TrunkConfig } from './config.js';
import { createLogger } from './log.js';
import { startTrunk } from './server.js';

function usage(): never {
  console.error('usage: npm start -- [--config FILE] [--trace]');
  process.exit(2);
}

const args = process.argv.slice(2);
let configPath: string | undefined;
let trace = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--config') configPath = args[++i] ?? usage();
  else if (args[i] === '--trace') trace = true;
  else if (args[i] === '--help' || args[i] === '-h') usage();
  else usage();
}

let config: TrunkConfig;
try {
  config = configPath ? loadConfig(configPath) : defaultConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}
if (trace) config.log.level = 'debug';
const log = createLogger(config.log.level);

const trunk = await startTrunk(config, { log, trace }).catch((err: Error) => {
  log('error', 'trunk.start_failed', { error: err.message });
  process.exit(1);
});

log('info', 'trunk.started', {
  config: configPath ?? '(embedded default)',
  sip: trunk.sip.map((s) => `${s.transport}:${s.address}:${s.port}`).join(','),
  http: `http://${trunk.http.address}:${trunk.http.port}/v1.0/calls (Bearer ${configPath ? '<from config>' : config.http.token})`,
  media: config.media,
  algorithms: config.auth.algorithms.join(','),
  provisioning: `http://${trunk.http.address}:${trunk.http.port}/v1.0/trunks (trunk domains <name>.${config.provisioning.baseDomain}, ${trunk.trunks.size} loaded, saved to ${config.provisioning.storePath ?? '(memory only)'})`,
});
for (const [domain, d] of Object.entries(config.domains)) {
  log('info', 'trunk.domain', {
    domain,
    extensions: Object.keys(d.extensions).join(','),
    routes: d.routes.map((r) => `${r.prefix || '*'}->${r.targets.join('|')}`).join(' '),
  });
}
if (!configPath) {
  log('info', 'trunk.try_it', { call: 'sip:<any number>@demo.trunk.sipkit.test via 127.0.0.1:5060', user: '1000', password: 'sipkit-demo' });
}

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log('info', 'trunk.signal', { signal: sig });
    trunk.stop().then(
      () => process.exit(0),
      (err: Error) => {
        log('error', 'trunk.stop_failed', { error: err.message });
        process.exit(1);
      },
    );
  });
}
