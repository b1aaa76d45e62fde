import { describe, expect, it } from 'vitest';
import { resolveConnectionOptions } from '../../../src/connection/options.js';
import { MessagePump } from '../../../src/connection/pump.js';
import type { ConnectionState } from '../../../src/connection/types.js';
import { StateError } from '../../../src/errors.js';

function pump(): MessagePump {
  return new MessagePump(resolveConnectionOptions({ host: '127.0.0.1', user: 'alice', env: {} }), {});
}

function walk(p: MessagePump, states: ConnectionState[]): void {
  for (const s of states) p.transition(s);
}

describe('connection state machine', () => {
  it('follows connecting -> authenticating -> ready -> busy -> copy -> ready -> closing -> closed', () => {
    const p = pump();
    expect(p.state).toBe('connecting');
    walk(p, ['authenticating', 'ready', 'busy', 'copy-both', 'copy-in', 'busy', 'ready', 'closing', 'closed']);
    expect(p.state).toBe('closed');
  });

  it('derives the copy state from the open directions', () => {
    const p = pump();
    walk(p, ['authenticating', 'ready']);
    p.beginCommand();
    p.setCopy(true, true);
    expect(p.state).toBe('copy-both');
    p.setCopy(false, true);
    expect(p.state).toBe('copy-in');
    p.setCopy(true, false);
    expect(p.state).toBe('copy-out');
    p.setCopy(false, false);
    expect(p.state).toBe('busy');
    p.endCommand();
    expect(p.state).toBe('ready');
  });

  it.each<[ConnectionState[], ConnectionState]>([
    [[], 'ready'],
    [[], 'busy'],
    [['authenticating'], 'copy-out'],
    [['authenticating', 'ready'], 'copy-both'],
    [['authenticating', 'ready', 'closing'], 'ready'],
    [['closed'], 'ready'],
  ])('refuses a move it does not draw (after %j, to %s) with a coded StateError', (path, to) => {
    const p = pump();
    walk(p, path);
    let err: unknown;
    try {
      p.transition(to);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).code).toBe('ERR_PGBB_STATE');
  });

  it('refuses a call in the wrong state with a coded StateError', () => {
    const p = pump();
    expect(() => p.assertState(['ready'], 'stream()')).toThrow(/stream\(\) is not allowed while the connection is connecting/);
    p.destroy();
    expect(p.state).toBe('closed');
    expect(() => p.assertState(['ready'], 'stream()')).toThrow(StateError);
    expect(() => p.assertState(['ready'], 'stream()')).toThrow(/called on a closed connection/);
  });
});
