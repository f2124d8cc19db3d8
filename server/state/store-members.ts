/**
 * The member table's record in the state store (key 0x04, store-format.ts): the members added
 * by configuration changes, as [name, peer URL or null, role], and the names of removed members.
 * Written whole when it changes (a handful of members, changed rarely).
 *
 * Must never: load a record it cannot read (it throws, naming what is wrong).
 */

import type { MemberRole, MembersImage } from './members.js';

export function membersFields(image: MembersImage): unknown {
  return [image.members.map((m) => [m.name, m.peerUrl, m.role]), image.removed];
}

export function decodeMembers(fields: unknown, where: () => string): MembersImage {
  const fail = (what: string): never => {
    throw new Error(`${where()}: ${what}`);
  };
  if (!Array.isArray(fields) || fields.length !== 2 || !Array.isArray(fields[0]) || !Array.isArray(fields[1])) return fail('not a member table');
  const members = (fields[0] as unknown[]).map((m) => {
    if (!Array.isArray(m) || m.length !== 3 || typeof m[0] !== 'string' || (m[1] !== null && typeof m[1] !== 'string') || (m[2] !== 'voter' && m[2] !== 'learner')) return fail('not a member');
    return { name: m[0] as string, peerUrl: m[1] as string | null, role: m[2] as MemberRole };
  });
  const removed = (fields[1] as unknown[]).map((name) => (typeof name === 'string' ? name : fail('not a removed member name')));
  return { members, removed };
}
