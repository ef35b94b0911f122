import type { ZccBridge } from '../common/bridge.js';

declare global {
  interface Window {
    /** Exposed by the preload (Electron) or by a host page; absent in a bare browser tab. */
    readonly zcc?: ZccBridge;
  }
}

export {};
