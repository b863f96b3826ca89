/**
 * npm run cluster -- --config FILE: Kamailio's dispatcher in front of N trunk instances (and a
 * local PostgreSQL when the config says "postgres": "local"). Prints where each part listens;
 * SIGINT/SIGTERM drain the instances, then stop the front and the database.
 */
import { ClusterConfigError, describeCluster, loadClusterConfig, startCluster, type ClusterConfig } from './cluster.js';

function usage(): never {
  console.error('usage: npm run cluster -- [--config FILE]   (without --config: examples/cluster/cluster.example.json)');
  process.exit(2);
}

const args = process.argv.slice(2);
let configPath: string | undefined;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--config') configPath = args[++i] ?? usage();
  else usage();
}

let config: ClusterConfig;
try {
  config = configPath ? loadClusterConfig(configPath) : loadClusterConfig(new URL('./cluster.example.json', import.meta.url).pathname);
} catch (err) {
  if (err instanceof ClusterConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}

const say = (line: string): void => console.log(`[cluster] ${line}`);
say(`starting ${config.instances.count} trunk instance(s) behind Kamailio; files in ${config.workDir}`);
const cluster = await startCluster(config, { output: 'prefixed', log: say }).catch((err: Error) => {
  console.error(`[cluster] ${err.message}`);
  process.exit(1);
});
for (const line of describeCluster(cluster)) say(line);
say('Ctrl-C (SIGINT) or SIGTERM: the instances drain, then everything stops');

let stopping = false;
const stop = (why: string, code: number): void => {
  if (stopping) return;
  stopping = true;
  say(`${why}: stopping (instances drain first)`);
  cluster.stop().then(
    () => {
      say('stopped');
      process.exit(code);
    },
    (err: Error) => {
      console.error(`[cluster] stop failed: ${err.message}`);
      process.exit(1);
    },
  );
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => stop(sig, 0));
// Without the front nothing reaches the instances: stop the rest. A lost instance is the front's to route around.
void cluster.front.exited.then((how) => stop(`the front exited (${how})`, 1));
for (const x of cluster.instances) void x.exited.then((how) => !stopping && say(`${x.id} exited (${how}); the front routes around it once its probe fails`));
