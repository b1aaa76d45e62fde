// Controllable promises for tests that check the order of things instead of timing them.
import { setImmediate as immediate } from 'node:timers/promises';

/** A promise with its resolve and reject handed out (Promise.withResolvers is Node 22+). */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Runs everything already queued (promise callbacks, stream ticks, immediates) once. Tests hold the
 * thing that must happen first behind a {@link deferred}, call this so a wrong implementation gets
 * its chance to go ahead, then release it and check the order; it is not a wait for a result.
 */
export async function settle(): Promise<void> {
  await immediate();
}
