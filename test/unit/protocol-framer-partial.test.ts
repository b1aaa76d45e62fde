// Framer.describePartial: what the error says when a connection ends inside a message.
import { describe, expect, it } from 'vitest';
import { Framer } from '../../src/protocol/framer.js';
import { build } from './fixtures/backend-messages.js';

describe('Framer.describePartial', () => {
  const whole = Buffer.concat([build.readyForQuery(), build.copyData(Buffer.alloc(100, 1))]);
  it('is undefined at a message boundary, whatever is still unread', () => {
    const f = new Framer();
    expect(f.describePartial()).toBeUndefined();
    f.push(whole);
    expect(f.describePartial()).toBeUndefined();
    f.pull();
    expect(f.describePartial()).toBeUndefined();
  });

  it('names the unfinished message after complete unread ones, fed at any split', () => {
    const cut = whole.subarray(0, whole.length - 30);
    for (let at = 1; at < cut.length; at++) {
      const f = new Framer();
      f.push(cut.subarray(0, at));
      f.push(cut.subarray(at));
      expect(f.describePartial()).toBe("75 of the 105 bytes of a message of type 'd' (0x64) at stream offset 6");
    }
    const f = new Framer();
    f.push(whole.subarray(0, 8));
    expect(f.describePartial()).toBe('2 byte(s) of a message header at stream offset 6');
    expect(f.pull()?.type).toBe(0x5a);
    expect(f.describePartial()).toBe('2 byte(s) of a message header at stream offset 6');
  });
});
