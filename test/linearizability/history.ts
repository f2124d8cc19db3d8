/**
 * The one history format shared by the simulator, real-process tests and benchmarks, so a
 * single checker reads all three. An operation is a client's request on a register (a key),
 * with logical call and return times taken from one clock that all clients share.
 *
 * An operation whose outcome the client could not learn (timeout, lost connection after
 * sending) has `returnTime: null` and `output: null`: it may have taken effect at any moment
 * after its call, or never. Operations that certainly did not take effect are left out of the
 * history altogether.
 */

export type RegisterValue = string | null; // null: the key is absent (never written)

export type RegisterInput =
  | { readonly kind: 'put'; readonly key: string; readonly value: string }
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'cas'; readonly key: string; readonly expected: RegisterValue; readonly value: string };

export type RegisterOutput =
  | { readonly kind: 'put' }
  | { readonly kind: 'get'; readonly value: RegisterValue }
  | { readonly kind: 'cas'; readonly ok: boolean };

export interface Operation {
  readonly clientId: number;
  readonly input: RegisterInput;
  /** Logical time the request was issued. */
  readonly callTime: number;
  /** Logical time the response arrived; null when the outcome is unknown. */
  readonly returnTime: number | null;
  /** What the system answered; null exactly when returnTime is null. */
  readonly output: RegisterOutput | null;
}

export type History = readonly Operation[];
