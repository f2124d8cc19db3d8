/**
 * The simulator's replicated state machine: a set of registers (key → value) with client
 * sessions that make retried writes exactly-once (Idempotent Receiver), as the real state
 * machine will. Deterministic: the same entries in the same order give the same state.
 *
 * Must never: read a clock or randomness, or apply a (clientId, seq) twice.
 */

import type { RegisterValue } from '../linearizability/history.js';

export type RegisterCommand =
  | { readonly kind: 'put'; readonly key: string; readonly value: string }
  | { readonly kind: 'cas'; readonly key: string; readonly expected: RegisterValue; readonly value: string };

export type CommandResult = { readonly kind: 'put' } | { readonly kind: 'cas'; readonly ok: boolean };

export interface ClientCommand {
  readonly clientId: number;
  readonly seq: number;
  readonly command: RegisterCommand;
}

interface Session {
  lastSeq: number;
  lastResult: CommandResult;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(cmd: ClientCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

export function decodeCommand(data: Uint8Array): ClientCommand {
  return JSON.parse(decoder.decode(data)) as ClientCommand;
}

export class RegisterMachine {
  private readonly registers = new Map<string, string>();
  private readonly sessions = new Map<number, Session>();

  get(key: string): RegisterValue {
    return this.registers.get(key) ?? null;
  }

  /** Apply a committed command; a repeat of an applied (clientId, seq) returns the recorded result. */
  apply(cmd: ClientCommand): CommandResult | null {
    const session = this.sessions.get(cmd.clientId);
    if (session !== undefined && cmd.seq <= session.lastSeq) {
      // An older seq was abandoned by its client: it must not take effect now.
      return cmd.seq === session.lastSeq ? session.lastResult : null;
    }
    const result = this.execute(cmd.command);
    this.sessions.set(cmd.clientId, { lastSeq: cmd.seq, lastResult: result });
    return result;
  }

  private execute(command: RegisterCommand): CommandResult {
    if (command.kind === 'put') {
      this.registers.set(command.key, command.value);
      return { kind: 'put' };
    }
    const current = this.get(command.key);
    if (current !== command.expected) return { kind: 'cas', ok: false };
    this.registers.set(command.key, command.value);
    return { kind: 'cas', ok: true };
  }

  encode(): Uint8Array {
    const registers = [...this.registers.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const sessions = [...this.sessions.entries()].sort(([a], [b]) => a - b);
    return encoder.encode(JSON.stringify({ registers, sessions }));
  }

  static decode(data: Uint8Array): RegisterMachine {
    const parsed = JSON.parse(decoder.decode(data)) as {
      registers: [string, string][];
      sessions: [number, Session][];
    };
    const machine = new RegisterMachine();
    for (const [k, v] of parsed.registers) machine.registers.set(k, v);
    for (const [id, s] of parsed.sessions) machine.sessions.set(id, s);
    return machine;
  }
}
