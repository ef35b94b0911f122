// A TCP/TLS relay in Node for the `hops` benchmark (bench/hops.bench.ts): the least a relay hop
// can be in Node (sockets piped both ways, half-close kept, Nagle off), against the same hop in C
// (bench/native/relay.c). Forked bundled, on plain Node, with the JIT budget of the product's
// data-plane processes (tierUpEarly).
//
// Usage: hops-relay.ts UPSTREAM_PORT [IN OUT DIR]
//   IN, OUT: tcp (the default) or tls: the accepted side a TLS server, the upstream side a TLS
//   client, mutual TLS 1.3 with the Z-Tunnel's suites (src/protocol/tls.ts); DIR holds ca.crt,
//   server.crt, server.key, client.crt, client.key.
import { readFileSync } from 'node:fs';
import net, { type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { tierUpEarly } from '../src/common/jit-tiering.js';
import { TLS13_CIPHERSUITES } from '../src/protocol/tls.js';

tierUpEarly();

const [upstreamArg, inArg = 'tcp', outArg = 'tcp', dir = ''] = process.argv.slice(2);
const upstream = Number(upstreamArg);
const pem = (f: string): string => readFileSync(join(dir, f), 'utf8');
const TLS13 = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: TLS13_CIPHERSUITES } as const;
const clientContext = outArg === 'tls' ? tls.createSecureContext({ ...TLS13, key: pem('client.key'), cert: pem('client.crt'), ca: pem('ca.crt') }) : undefined;

function dialUpstream(): Socket {
  const opts = { port: upstream, host: '127.0.0.1', allowHalfOpen: true, noDelay: true };
  if (!clientContext) return net.connect(opts);
  const s = tls.connect({ ...opts, ...TLS13, secureContext: clientContext, rejectUnauthorized: true });
  s.setNoDelay(true);
  return s;
}

function relay(client: Socket): void {
  client.setNoDelay(true);
  const up = dialUpstream();
  client.pipe(up);
  up.pipe(client);
  client.on('error', () => up.destroy());
  up.on('error', () => client.destroy());
}

const server =
  inArg === 'tls'
    ? tls.createServer({ ...TLS13, key: pem('server.key'), cert: pem('server.crt'), ca: pem('ca.crt'), requestCert: true, rejectUnauthorized: true, allowHalfOpen: true }, relay)
    : net.createServer({ allowHalfOpen: true, noDelay: true }, relay);
server.listen(0, '127.0.0.1', () => process.send?.({ type: 'relay', port: (server.address() as AddressInfo).port }));
process.on('message', (m: { type: string }) => {
  if (m.type === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
