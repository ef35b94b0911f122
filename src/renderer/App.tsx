import { useState } from 'react';
import type { ZccBridge } from '../common/bridge.js';
import { ConfigErrorBanner, NetworkLine, SafeModeBanner } from './components/StatusBanners';
import { DiagnosticsView } from './components/DiagnosticsView';
import { SettingsView } from './components/SettingsView';
import { TabPanel, Tabs, type TabDef } from './components/Tabs';
import { TenantCard } from './components/TenantCard';
import { shownStatus, useAgentStatus } from './use-agent-status';
import { useNow } from './use-now';

type TabId = 'status' | 'settings' | 'diagnostics';
const TABS: readonly TabDef<TabId>[] = [
  { id: 'status', label: 'Status' },
  { id: 'settings', label: 'Settings' },
  { id: 'diagnostics', label: 'Diagnostics' },
];

/** The window: agent-wide banners on every view, then Status, Settings or Diagnostics. */
export function App({ bridge }: { bridge: ZccBridge }) {
  const view = useAgentStatus(bridge);
  const [tab, setTab] = useState<TabId>('status');
  const now = useNow();
  const status = shownStatus(view);

  return (
    <main className="app" aria-labelledby="app-title" aria-busy={view.kind === 'loading'}>
      <header className="app-head">
        <h1 id="app-title">zcc</h1>
        {status && <p className="muted">Agent {status.version}</p>}
        {status && <NetworkLine status={status} />}
      </header>
      {view.kind === 'loading' && <p role="status">Contacting the agent…</p>}
      {view.kind === 'unavailable' && (
        <p className="notice error" role="alert">
          {view.reason}
          {view.last && ' The details below may be out of date.'}
        </p>
      )}
      {status && <SafeModeBanner status={status} />}
      {status && <ConfigErrorBanner status={status} />}
      <Tabs<TabId> label="Views" idPrefix="zcc" tabs={TABS} selected={tab} onSelect={setTab} />
      <TabPanel idPrefix="zcc" id={tab}>
        {tab === 'status' && (
          <>
            {status && status.tenants.length === 0 && <p>No tenants are enrolled on this device.</p>}
            {status?.tenants.map((t) => <TenantCard key={t.id} tenant={t} bridge={bridge} network={status.network} now={now} />)}
          </>
        )}
        {tab === 'settings' && <SettingsView bridge={bridge} version={JSON.stringify(status?.config ?? null)} />}
        {tab === 'diagnostics' && <DiagnosticsView bridge={bridge} />}
      </TabPanel>
    </main>
  );
}
