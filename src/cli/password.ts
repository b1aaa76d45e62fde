/**
 * `-W`: read a password from the terminal without echoing it, as libpq's
 * simple_prompt does. Refuses when standard input is not a terminal: a password
 * must then come from PGPASSWORD or ~/.pgpass, never from a pipe by accident.
 * @module
 */
import { AbortError, ConfigError } from '../entries/errors.js';

/** The parts of `process.stdin` the prompt uses. */
export interface PromptInput {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

/** Options of {@link promptPassword}. */
export interface PromptOptions {
  input: PromptInput;
  /** Where the prompt is written (stderr, like libpq). */
  output: { write(s: string): unknown };
  /** @default 'Password: ' */
  prompt?: string;
  signal?: AbortSignal;
}

/**
 * Ask for a password on the terminal with echo off. Enter ends it, Backspace
 * deletes, Ctrl-U clears, Ctrl-C and Ctrl-D on an empty line abort.
 * @throws ConfigError when standard input is not a terminal.
 * @throws AbortError on Ctrl-C or when `signal` aborts.
 */
export function promptPassword(o: PromptOptions): Promise<string> {
  const { input, output } = o;
  if (!input.isTTY || typeof input.setRawMode !== 'function') {
    return Promise.reject(
      new ConfigError(
        'cannot prompt for a password (-W): standard input is not a terminal; ' + 'set PGPASSWORD or use a ~/.pgpass file instead',
      ),
    );
  }
  output.write(o.prompt ?? 'Password: ');
  return new Promise<string>((resolve, reject) => {
    let value = '';
    const finish = (err: Error | undefined) => {
      input.off('data', onData);
      o.signal?.removeEventListener('abort', onAbort);
      input.setRawMode?.(false);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onAbort = () => finish(new AbortError('password prompt interrupted'));
    const onData = (chunk: Buffer | string) => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(undefined);
        if (ch === '\u0003') return finish(new AbortError('password prompt interrupted'));
        if (ch === '\u0004') {
          if (value === '') return finish(new AbortError('password prompt interrupted'));
          continue;
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch === '\u0015') value = '';
        else value += ch;
      }
    };
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    input.setRawMode?.(true);
    input.on('data', onData);
    input.resume();
  });
}
