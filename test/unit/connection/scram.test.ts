import { describe, expect, it } from 'vitest';
import { chooseScramMechanism, ScramClient } from '../../../src/connection/auth/scram.js';

// RFC 7677 §3: user "user", password "pencil".
const RFC = {
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

function rfcClient(): ScramClient {
  return new ScramClient({
    password: 'pencil',
    username: 'user',
    nonce: RFC.clientNonce,
    channelBinding: { mechanism: 'SCRAM-SHA-256', gs2Header: 'n,,' },
  });
}

function expectAuthError(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toMatchObject({ code: 'ERR_PGBB_AUTH' });
    expect((err as Error).message).toMatch(pattern);
    return;
  }
  expect.fail('expected an AuthenticationError');
}

describe('ScramClient with the RFC 7677 example', () => {
  it('produces the client proof and accepts the server signature byte-exactly', () => {
    const client = rfcClient();
    expect(client.clientFirstMessage()).toBe(RFC.clientFirst);
    expect(client.handleServerFirst(RFC.serverFirst)).toBe(RFC.clientFinal);
    expect(() => client.verifyServerFinal(RFC.serverFinal)).not.toThrow();
  });

  it('rejects a tampered server signature', () => {
    const client = rfcClient();
    client.clientFirstMessage();
    client.handleServerFirst(RFC.serverFirst);
    const tampered = RFC.serverFinal.replace('6rri', '6rrj');
    expectAuthError(
      () => client.verifyServerFinal(tampered),
      /server signature did not verify: the server may not know the password, or something is impersonating it/,
    );
  });

  it('rejects a server signature of the wrong length', () => {
    const client = rfcClient();
    client.clientFirstMessage();
    client.handleServerFirst(RFC.serverFirst);
    expectAuthError(() => client.verifyServerFinal('v=AAAA'), /server signature did not verify/);
  });

  it('turns e= in server-final into an AuthenticationError', () => {
    const client = rfcClient();
    client.clientFirstMessage();
    client.handleServerFirst(RFC.serverFirst);
    expectAuthError(() => client.verifyServerFinal('e=invalid-proof'), /rejected SCRAM authentication: invalid-proof/);
  });

  it('rejects a server nonce that does not extend ours', () => {
    const client = rfcClient();
    client.clientFirstMessage();
    const wrong = RFC.serverFirst.replace('rOprNGfw', 'XOprNGfw');
    expectAuthError(() => client.handleServerFirst(wrong), /nonce mismatch/);
  });

  it('rejects a server nonce equal to ours (no server part)', () => {
    const client = rfcClient();
    client.clientFirstMessage();
    expectAuthError(() => client.handleServerFirst(`r=${RFC.clientNonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`), /nonce mismatch/);
  });

  it.each(['0', '-1', 'abc', '4096x', '', '99999999999', '2147483648'])('rejects iteration count %j', (i) => {
    const client = rfcClient();
    client.clientFirstMessage();
    const bad = RFC.serverFirst.replace('i=4096', `i=${i}`);
    expectAuthError(() => client.handleServerFirst(bad), /iteration count/);
  });

  it('rejects a salt that is not base64, or attributes out of order', () => {
    let client = rfcClient();
    client.clientFirstMessage();
    expectAuthError(() => client.handleServerFirst(RFC.serverFirst.replace('s=W22Z', 's=!22Z')), /invalid salt/);
    client = rfcClient();
    client.clientFirstMessage();
    expectAuthError(() => client.handleServerFirst(`s=W22ZaJ0SNY7soEsUEjb6gQ==,r=${RFC.clientNonce}abc,i=4096`), /expected attribute "r"/);
    client = rfcClient();
    client.clientFirstMessage();
    expectAuthError(() => client.handleServerFirst('e=other-error'), /rejected SCRAM authentication: other-error/);
  });

  it('enforces the order of the exchange', () => {
    const client = rfcClient();
    expectAuthError(() => client.handleServerFirst(RFC.serverFirst), /out of order/);
    client.clientFirstMessage();
    expectAuthError(() => client.clientFirstMessage(), /out of order/);
  });

  it('sends an empty user name and a random base64 nonce by default, as libpq does', () => {
    const client = new ScramClient({ password: 'x', channelBinding: { mechanism: 'SCRAM-SHA-256', gs2Header: 'n,,' } });
    expect(client.clientFirstMessage()).toMatch(/^n,,n=,r=[A-Za-z0-9+/]{24}$/);
  });
});

describe('ScramClient channel binding', () => {
  it('puts gs2 header and binding data in c= for SCRAM-SHA-256-PLUS', () => {
    const bindingData = Buffer.alloc(32, 0xab);
    const client = new ScramClient({
      password: 'pencil',
      nonce: 'abc',
      channelBinding: { mechanism: 'SCRAM-SHA-256-PLUS', gs2Header: 'p=tls-server-end-point,,', bindingData },
    });
    expect(client.clientFirstMessage()).toBe('p=tls-server-end-point,,n=,r=abc');
    const final = client.handleServerFirst('r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    const c = /^c=([^,]+),r=abcdef,p=[A-Za-z0-9+/=]+$/.exec(final)?.[1];
    expect(Buffer.from(c!, 'base64')).toEqual(Buffer.concat([Buffer.from('p=tls-server-end-point,,'), bindingData]));
  });

  it('echoes y,, in c= when the client could bind but the server did not offer -PLUS', () => {
    const client = new ScramClient({ password: 'p', nonce: 'abc', channelBinding: { mechanism: 'SCRAM-SHA-256', gs2Header: 'y,,' } });
    expect(client.clientFirstMessage()).toBe('y,,n=,r=abc');
    expect(client.handleServerFirst('r=abcd,s=AAAA,i=1')).toMatch(/^c=eSws,r=abcd,p=/);
  });

  it('refuses -PLUS without binding data', () => {
    expectAuthError(
      () => new ScramClient({ password: 'p', channelBinding: { mechanism: 'SCRAM-SHA-256-PLUS', gs2Header: 'p=tls-server-end-point,,' } }),
      /binding data/,
    );
  });
});

describe('chooseScramMechanism', () => {
  const both = ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'];
  const plain = ['SCRAM-SHA-256'];

  it('uses -PLUS over TLS when offered, unless disabled', () => {
    expect(chooseScramMechanism(both, true, 'prefer')).toEqual({ mechanism: 'SCRAM-SHA-256-PLUS', gs2Header: 'p=tls-server-end-point,,' });
    expect(chooseScramMechanism(both, true, 'require')).toEqual({ mechanism: 'SCRAM-SHA-256-PLUS', gs2Header: 'p=tls-server-end-point,,' });
    expect(chooseScramMechanism(both, true, 'disable')).toEqual({ mechanism: 'SCRAM-SHA-256', gs2Header: 'n,,' });
  });

  it('says y,, over TLS when the server did not offer -PLUS', () => {
    expect(chooseScramMechanism(plain, true, 'prefer')).toEqual({ mechanism: 'SCRAM-SHA-256', gs2Header: 'y,,' });
    expect(chooseScramMechanism(plain, true, 'disable')).toEqual({ mechanism: 'SCRAM-SHA-256', gs2Header: 'n,,' });
  });

  it('says n,, without TLS', () => {
    expect(chooseScramMechanism(plain, false, 'prefer')).toEqual({ mechanism: 'SCRAM-SHA-256', gs2Header: 'n,,' });
  });

  it('fails when channel binding is required but cannot be used', () => {
    expectAuthError(
      () => chooseScramMechanism(plain, true, 'require'),
      /channel_binding=require, but the server did not offer SCRAM-SHA-256-PLUS/,
    );
    expectAuthError(() => chooseScramMechanism(plain, false, 'require'), /channel_binding=require needs a TLS connection/);
  });

  it('fails when -PLUS is offered without TLS (libpq: TLS may have been stripped)', () => {
    expectAuthError(() => chooseScramMechanism(both, false, 'prefer'), /not TLS-encrypted/);
  });

  it('fails when nothing supported is offered', () => {
    expectAuthError(
      () => chooseScramMechanism(['SCRAM-SHA-512'], false, 'prefer'),
      /none of the server's SASL authentication mechanisms are supported \(offered: SCRAM-SHA-512\)/,
    );
  });
});
