/**
 * AuthenticationMD5Password (code 5): the reply PostgreSQL's `md5` method expects.
 * @module
 */
import { createHash } from 'node:crypto';

function md5Hex(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

/**
 * The PasswordMessage body for MD5 authentication:
 * `"md5" + hex(md5(hex(md5(password + user)) + salt))`.
 *
 * The inner hash is what `pg_authid.rolpassword` stores for an MD5 role (minus the
 * `md5` prefix); the salt makes the reply single-use (backend `CheckMD5Auth`).
 *
 * @param user - The startup user name (the one sent in StartupMessage).
 * @param password - The password, as UTF-8.
 * @param salt - The 4 bytes of the AuthenticationMD5Password message.
 * @returns The 35-character string to send in a PasswordMessage ('p'), without the NUL.
 *
 * @example
 * ```ts
 * md5PasswordMessage('md5user', 'secret', Buffer.from([1, 2, 3, 4])); // 'md5' + 32 hex digits
 * ```
 */
export function md5PasswordMessage(user: string, password: string, salt: Buffer): string {
  const inner = md5Hex(Buffer.concat([Buffer.from(password, 'utf8'), Buffer.from(user, 'utf8')]));
  return `md5${md5Hex(Buffer.concat([Buffer.from(inner, 'latin1'), salt]))}`;
}
