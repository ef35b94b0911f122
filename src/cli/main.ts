import { parseArgs } from 'node:util';
import { tierUpEarly } from '../common/jit-tiering.js';
import { createLogger } from '../common/log.js';
import { createAgentClient } from '../common/localapi-client.js';
import { localApiSocket } from './status.js';
import type { DataPlaneChoice } from '../../native/dataplane/dataplane-process.js';

// Each command loads its own code when it runs (dynamic imports below): `zcc agent`, the long
// running process, then holds no reference cloud, SAML, CA or demo code. The cloud side alone
// (@peculiar/x509, the SAML and XML libraries) is tens of MB of resident memory.
const USAGE = `usage: zcc <command> [options]

commands:
  demo        run the reference cloud, a connector, demo apps and an enrolled agent locally
              --socks HOST:PORT  --http-proxy HOST:PORT  --dns HOST:PORT  --ui HOST:PORT  --data-dir DIR  --headless
              --partner (a second tenant with its own cloud, connector and wiki)
              --tun (intercept mode: any port of the synthetic IPs via the kernel; Linux, root)
              --dr (disaster recovery: DR domain on a local dnsmasq, a private service edge)
  agent       run the agent (what the system service runs)
              --config FILE (user config; default /var/lib/zcc/config.json)  --managed FILE|none
              --state-dir DIR  --socket PATH  --os-dns (point the OS resolver at the agent)
              --intercept (kernel intercept of the synthetic pool)  --socks HOST:PORT  --http-proxy HOST:PORT
              --data-plane auto|native|node (who carries intercepted TCP; default auto: native, built
              with cc, when possible)
              --no-dns  --operator-group GROUP
  login       sign in (or again) to a tenant through the browser   [--tenant ID] [--no-browser]
  enroll      enroll this device with a configured tenant: a browser sign-in, or with
              --token TOKEN and the tenant add options, an MDM-style token enrollment
  diag        export: write a diagnostics bundle (status and recent redacted log lines)
  status      show the agent's state (per tenant: connection, auth, apps, synthetic IPs)
              --json  --data-dir DIR (a demo's agent)
  tenant      add|remove|on|off a tenant of the running agent (enable|disable also accepted)
              add --tenant ID --name NAME --edge HOST:PORT --enroll HOST:PORT --ca FILE
                  --token TOKEN (or ZCC_ENROLL_TOKEN) [--server-name NAME] [--data-dir DIR]
  config      check FILE: validate an agent configuration file (JSON, plist, .reg, registry JSON dump)
              --format json|plist|reg|reg-json (default: from the name and content)
              show [--json]: the running agent's settings (managed ones marked)
              set KEY VALUE: change a setting of the running agent (refused for managed keys)
  cloud       run the reference cloud (enrollment + service edge)   --config FILE
  connector   run an app connector                                   --config FILE
  pse         run a private service edge (disaster recovery)          --config FILE
  cloud export-dr --config FILE --out DIR [--pse-name NAME] [--pse-server-name NAME]...
              write the DR bundle and the PSE key from the cloud's config and CAs
  dr          keygen|record|verify: the DR tool (run "zcc dr" for its options)
`;

/** Runs until SIGINT/SIGTERM, then stops cleanly; a second signal exits at once. */
function untilSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (sig: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    console.error(`zcc: ${sig}, stopping`);
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`zcc: error while stopping: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  // Subcommands with options of their own.
  if (command === 'dr') return (await import('./dr.js')).drCommand(rest);
  if (command === 'cloud' && rest[0] === 'export-dr') return (await import('./pse.js')).exportDrCommand(rest.slice(1));
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string' },
      socks: { type: 'string' },
      'http-proxy': { type: 'string' },
      dns: { type: 'string' },
      ui: { type: 'string' },
      partner: { type: 'boolean' },
      tun: { type: 'boolean' },
      dr: { type: 'boolean' },
      tenant: { type: 'string' },
      name: { type: 'string' },
      edge: { type: 'string' },
      enroll: { type: 'string' },
      'server-name': { type: 'string' },
      ca: { type: 'string' },
      token: { type: 'string' },
      'data-dir': { type: 'string' },
      headless: { type: 'boolean' },
      json: { type: 'boolean' },
      format: { type: 'string' },
      managed: { type: 'string' },
      'state-dir': { type: 'string' },
      socket: { type: 'string' },
      'os-dns': { type: 'boolean' },
      intercept: { type: 'boolean' },
      'data-plane': { type: 'string' },
      'no-dns': { type: 'boolean' },
      'no-browser': { type: 'boolean' },
      'operator-group': { type: 'string' },
      out: { type: 'string' },
    },
    allowPositionals: true,
  });
  const client = () => createAgentClient({ socketPath: values.socket ?? localApiSocket(values['data-dir']) });
  // The commands that carry connections for as long as they run.
  if (command === 'demo' || command === 'agent' || command === 'cloud' || command === 'connector' || command === 'pse') tierUpEarly();
  switch (command) {
    case 'demo': {
      const [{ LogRing }, { startDemo }, { printDrDemoHelp }] = await Promise.all([import('../common/log-ring.js'), import('./demo.js'), import('./demo-dr.js')]);
      const logs = new LogRing(1000);
      const log = createLogger({ name: 'zcc-demo', ring: logs });
      const demo = await startDemo({ log, logs, dataDir: values['data-dir'], socks: values.socks, httpProxy: values['http-proxy'], dns: values.dns, partner: values.partner, ui: values.ui, headless: values.headless, dr: values.dr, tun: values.tun });
      console.log(`READY ${JSON.stringify(demo.ready)}`);
      printDrDemoHelp(demo.ready);
      untilSignal(demo.stop);
      return;
    }
    case 'agent': {
      const { startAgent } = await import('./agent.js');
      const { runtime, ready } = await startAgent({
        config: values.config,
        managed: values.managed,
        stateDir: values['state-dir'],
        socket: values.socket,
        osDns: values['os-dns'],
        intercept: values.intercept,
        dataPlane: dataPlaneArg(values['data-plane']),
        socks: values.socks,
        httpProxy: values['http-proxy'],
        noDns: values['no-dns'],
        operatorGroup: values['operator-group'],
      });
      console.log(`READY ${JSON.stringify(ready)}`);
      untilSignal(() => runtime.stop());
      return;
    }
    case 'enroll':
      // With a token: an MDM-style enrollment; without one, enrolling is a browser sign-in.
      if (values.token || process.env.ZCC_ENROLL_TOKEN) {
        const { tenantCommand } = await import('./tenant.js');
        await tenantCommand({ action: 'add', tenant: values.tenant, name: values.name, edge: values.edge, enroll: values.enroll, serverName: values['server-name'], caFile: values.ca, token: values.token, dataDir: values['data-dir'] });
        return;
      }
      await (await import('./login.js')).loginCommand(client(), { tenant: values.tenant, browser: !values['no-browser'] });
      return;
    case 'login':
      await (await import('./login.js')).loginCommand(client(), { tenant: values.tenant, browser: !values['no-browser'] });
      return;
    case 'diag': {
      if (positionals[0] !== 'export') throw new Error('usage: zcc diag export');
      const out = await client().request('exportDiagnostics', {});
      console.log(`diagnostics written to ${out.path} (${out.bytes} bytes)`);
      return;
    }
    case 'status':
      await (await import('./status.js')).printStatus({ json: values.json, dataDir: values['data-dir'], socket: values.socket });
      return;
    case 'tenant':
      await (await import('./tenant.js')).tenantCommand({
        action: positionals[0],
        tenant: values.tenant,
        name: values.name,
        edge: values.edge,
        enroll: values.enroll,
        serverName: values['server-name'],
        caFile: values.ca,
        token: values.token,
        dataDir: values['data-dir'],
      });
      return;
    case 'config':
      if (positionals[0] === 'show') return (await import('./settings.js')).showSettings(client(), values.json ?? false);
      if (positionals[0] === 'set') return (await import('./settings.js')).setSetting(client(), positionals[1], positionals[2]);
      await (await import('./config-check.js')).configCommand(positionals[0], positionals.slice(1), values.format);
      return;
    case 'cloud': {
      if (!values.config) throw new Error('zcc cloud: --config FILE is required');
      const log = createLogger({ name: 'zcc-cloud' });
      const [{ startCloud }, { loadCloudConfig }] = await Promise.all([import('../edge/cloud.js'), import('../edge/cloud-config.js')]);
      const cloud = await startCloud(loadCloudConfig(values.config), log);
      console.log(`READY ${JSON.stringify({ tunnel: cloud.tunnel, enroll: cloud.enroll, caFile: cloud.caFile })}`);
      untilSignal(() => cloud.close());
      return;
    }
    case 'connector': {
      if (!values.config) throw new Error('zcc connector: --config FILE is required');
      const log = createLogger({ name: 'zcc-connector' });
      const [{ Connector }, { loadConnectorConfig }] = await Promise.all([import('../edge/connector/connector.js'), import('../edge/connector/connector-config.js')]);
      const connector = new Connector(loadConnectorConfig(values.config), log);
      await connector.start();
      console.log(`READY ${JSON.stringify({ connected: connector.connected })}`);
      untilSignal(() => connector.stop());
      return;
    }
    case 'pse': {
      const pse = await (await import('./pse.js')).pseCommand(values.config);
      console.log(`READY ${JSON.stringify({ tunnel: pse.tunnel, mode: pse.mode.mode })}`);
      untilSignal(() => pse.close());
      return;
    }
    default:
      process.stderr.write(USAGE);
      process.exit(command ? 2 : 0);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`zcc: ${(err as Error).message}`);
  process.exit(1);
});

function dataPlaneArg(value: string | undefined): DataPlaneChoice | undefined {
  if (value === undefined || value === 'auto' || value === 'node' || value === 'native') return value;
  throw new Error(`--data-plane: expected auto, native or node, got ${JSON.stringify(value)}`);
}
