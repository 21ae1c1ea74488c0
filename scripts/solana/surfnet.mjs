// Starts an offline Surfnet (Surfpool's embedded Solana runtime) for tests and prints its
// RPC URL then its websocket URL, one a line, then keeps running until killed.
// Usage: node surfnet.mjs
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Surfnet } = require('@solana/surfpool-linux-x64-gnu');

const surfnet = Surfnet.startWithConfig({ offline: true });
process.stdout.write(`${surfnet.rpcUrl}\n${surfnet.wsUrl}\n`);

const stop = () => {
  try { surfnet.stop(); } catch { /* already stopped */ }
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => {}, 1 << 30);
