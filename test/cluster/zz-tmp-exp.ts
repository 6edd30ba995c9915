import { LocalCluster } from './local-cluster.js';
const extra = JSON.parse(process.argv[2] ?? '{}');
const c = await LocalCluster.start({ extraArgs: extra });
await c.stop();
