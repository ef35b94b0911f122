/**
 * Where a JSON text goes wrong, as line and column. V8's JSON.parse messages only sometimes
 * carry a position ("Unexpected token '}', ..." has none), and an administrator fixing a managed
 * file on a locked-down machine needs the line. Only called after JSON.parse has failed.
 */

export interface JsonErrorPosition {
  line: number;
  column: number;
  /** What the scanner expected at that point. */
  expected: string;
}

export function findJsonError(text: string): JsonErrorPosition | undefined {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const fail = (expected: string): never => {
    throw Object.assign(new Error('json'), { at: i, expected });
  };
  const literal = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length;
    else fail('a value');
  };
  const string = (): void => {
    if (text[i] !== '"') fail('a string');
    i++;
    for (;;) {
      const c = text[i];
      if (c === undefined || c === '\n') fail('the closing quote');
      if (c === '"') break;
      if (c === '\\') {
        if (/^u[0-9a-fA-F]{4}/.test(text.slice(i + 1, i + 6))) i += 5;
        else if ('"\\/bfnrt'.includes(text[i + 1] ?? 'x')) i++;
        else fail('a valid escape');
      }
      i++;
    }
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') return container('}', true);
    if (c === '[') return container(']', false);
    if (c === '"') return string();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) fail('a value');
    i += (m as RegExpExecArray)[0].length;
  };
  const container = (close: string, object: boolean): void => {
    i++;
    ws();
    if (text[i] === close) {
      i++;
      return;
    }
    for (;;) {
      if (object) {
        ws();
        string();
        ws();
        if (text[i] !== ':') fail('":"');
        i++;
      }
      value();
      ws();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === close) {
        i++;
        return;
      }
      fail(`"," or "${close}"`);
    }
  };
  try {
    value();
    ws();
    if (i < text.length) fail('the end of the file');
    return undefined;
  } catch (e) {
    const { at, expected } = e as { at: number; expected: string };
    const before = text.slice(0, at);
    return { line: before.split('\n').length, column: at - before.lastIndexOf('\n'), expected };
  }
}
