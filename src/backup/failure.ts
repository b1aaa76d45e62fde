/**
 * How a backup session fails once and everywhere: the first error is kept, every pending
 * {@link FailureLatch.guard}ed promise rejects with it at once, and later calls see it too.
 * Shared by the session, its response pump and its WAL companion. No I/O.
 * @module
 */

/** A promise with its settle functions. @internal */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** A promise settled from outside; its rejection is marked handled. @internal */
export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** `e` as an Error (wrapping what was thrown otherwise). @internal */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** The first failure of a session, and the promises that must reject with it. @internal */
export class FailureLatch {
  #failure: Error | undefined;
  readonly #failed = deferred<never>();
  /** The reject functions of pending {@link guard} calls; {@link fail} calls them. */
  readonly #guards = new Set<(err: unknown) => void>();

  /** The failure, once there is one. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Rejects with the failure (stays pending while there is none). */
  get failed(): Promise<never> {
    return this.#failed.promise;
  }

  /** Record the failure and reject every guarded promise. Returns false when already failed. */
  fail(error: Error): boolean {
    if (this.#failure) return false;
    this.#failure = error;
    this.#failed.reject(error);
    for (const reject of this.#guards) reject(error);
    this.#guards.clear();
    return true;
  }

  throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  /**
   * Rejects as soon as the session fails, whatever `p` does. Not `Promise.race` with
   * {@link failed}: that promise stays pending for the whole backup, and every race adds a
   * reaction to it that keeps the race's settled promise (and so its value) reachable, so each
   * message of the response, with the socket chunk it views, would live until the session ended
   * (hundreds of MB of heap and GC time on a large backup).
   */
  guard<T>(p: Promise<T>): Promise<T> {
    if (this.#failure) {
      p.catch(() => {});
      return Promise.reject(this.#failure);
    }
    return new Promise<T>((resolve, reject) => {
      this.#guards.add(reject);
      p.then(
        (v) => {
          this.#guards.delete(reject);
          resolve(v);
        },
        (err: unknown) => {
          this.#guards.delete(reject);
          reject(err);
        },
      );
    });
  }
}
