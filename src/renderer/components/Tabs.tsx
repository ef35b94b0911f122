import { useRef, type KeyboardEvent, type ReactNode } from 'react';

export interface TabDef<Id extends string> {
  id: Id;
  label: string;
}

const tabId = (prefix: string, id: string): string => `${prefix}-tab-${id}`;
const panelId = (prefix: string, id: string): string => `${prefix}-panel-${id}`;

/**
 * The WAI-ARIA tabs pattern: one Tab stop for the whole list, arrow keys (and Home/End) move
 * between tabs and select them, Enter/Space on a focused tab selects it (it is a button).
 */
export function Tabs<Id extends string>(props: { label: string; idPrefix: string; tabs: readonly TabDef<Id>[]; selected: Id; onSelect(id: Id): void }) {
  const { tabs, selected, onSelect, idPrefix } = props;
  const refs = useRef(new Map<Id, HTMLButtonElement>());
  const move = (e: KeyboardEvent<HTMLDivElement>): void => {
    const i = tabs.findIndex((t) => t.id === selected);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    const tab = tabs[(next + tabs.length) % tabs.length];
    if (!tab) return;
    onSelect(tab.id);
    refs.current.get(tab.id)?.focus();
  };
  return (
    <div className="tabs" role="tablist" aria-label={props.label} onKeyDown={move}>
      {tabs.map((t) => (
        <button
          key={t.id}
          ref={(el) => {
            if (el) refs.current.set(t.id, el);
            else refs.current.delete(t.id);
          }}
          type="button"
          role="tab"
          id={tabId(idPrefix, t.id)}
          aria-selected={t.id === selected}
          aria-controls={panelId(idPrefix, t.id)}
          tabIndex={t.id === selected ? 0 : -1}
          onClick={() => onSelect(t.id)}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

/** The panel of the selected tab (only that one is rendered). */
export function TabPanel(props: { idPrefix: string; id: string; children: ReactNode }) {
  return (
    <section className="tab-panel" role="tabpanel" id={panelId(props.idPrefix, props.id)} aria-labelledby={tabId(props.idPrefix, props.id)}>
      {props.children}
    </section>
  );
}
