import { dataplaneBinary } from '../../native/dataplane/dataplane-process.js';

/** Why the native data plane cannot run here (no compiler or headers), or undefined when it can: built once per test file. */
export function nativePlaneUnavailable(): string | undefined {
  try {
    dataplaneBinary();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
