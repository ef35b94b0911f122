// A plain TCP relay in Node for the `hops` benchmark (bench/hops.bench.ts): the least a relay
// hop can be in Node (net sockets piped both ways, half-close kept, Nagle off), against the same
// hop in C (bench/native/tcp-relay.c). Forked bundled, on plain Node, with the JIT budget of the
// product's data-plane processes (tierUpEarly). Usage: hops-relay.ts UPSTREAM_PORT
import net, { type AddressInfo } from 'node:net';
import { tierUpEarly } from '../src/common/jit-tiering.js';

tierUpEarly();

const upstream = Number(process.argv[2]);
const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  const up = net.connect({ port: upstream, host: '127.0.0.1', allowHalfOpen: true, noDelay: true });
  client.pipe(up);
  up.pipe(client);
  client.on('error', () => up.destroy());
  up.on('error', () => client.destroy());
});
server.listen(0, '127.0.0.1', () => process.send?.({ type: 'relay', port: (server.address() as AddressInfo).port }));
process.on('message', (m: { type: string }) => {
  if (m.type === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
