import net from 'node:net';

/** Minimal SOCKS5 CONNECT with remote name resolution, as curl --socks5-hostname does it. */
export function socksConnect(proxy: { host: string; port: number }, host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: proxy.host, port: proxy.port, allowHalfOpen: true, noDelay: true });
    const name = Buffer.from(host);
    s.once('error', reject);
    s.once('connect', () => s.write(Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])])));
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 6) return;
      if (buf[1] !== 0) return fail(new Error(`SOCKS method refused`));
      if (buf[3] !== 0) return fail(new Error(`SOCKS reply ${buf[3]}`));
      const atyp = buf[5];
      const len = 2 + 4 + (atyp === 1 ? 4 : atyp === 4 ? 16 : 1 + (buf[6] ?? 0)) + 2;
      if (buf.length < len) return;
      s.off('data', onData);
      s.off('error', reject);
      s.pause();
      if (buf.length > len) s.unshift(buf.subarray(len));
      resolve(s);
    };
    const fail = (err: Error): void => {
      s.off('data', onData);
      s.destroy();
      reject(err);
    };
    s.on('data', onData);
  });
}
