import { useEffect, useState } from 'react';
import type { ZccBridge } from '../common/bridge.js';
import type { AgentStatus } from '../common/localapi-schema.js';
import { errorMessage } from './format';

export type AgentView =
  | { kind: 'loading' }
  | { kind: 'ready'; status: AgentStatus }
  | { kind: 'unavailable'; reason: string; last?: AgentStatus };

/** Starts from one snapshot, then follows pushed changes and outages. */
export function useAgentStatus(bridge: ZccBridge): AgentView {
  const [view, setView] = useState<AgentView>({ kind: 'loading' });
  useEffect(() => {
    let alive = true;
    const offStatus = bridge.onStatus((status) => setView({ kind: 'ready', status }));
    const offError = bridge.onAgentError((reason) =>
      setView((prev) => ({ kind: 'unavailable', reason, last: prev.kind === 'ready' ? prev.status : undefined })),
    );
    bridge.getStatus().then(
      // A status pushed meanwhile is newer than this answer: keep it.
      (status) => alive && setView((prev) => (prev.kind === 'ready' ? prev : { kind: 'ready', status })),
      (err: unknown) => alive && setView({ kind: 'unavailable', reason: errorMessage(err) }),
    );
    return () => {
      alive = false;
      offStatus();
      offError();
    };
  }, [bridge]);
  return view;
}

/** The status to show: the live one, or the last one seen while the agent is away. */
export function shownStatus(view: AgentView): AgentStatus | undefined {
  return view.kind === 'ready' ? view.status : view.kind === 'unavailable' ? view.last : undefined;
}
