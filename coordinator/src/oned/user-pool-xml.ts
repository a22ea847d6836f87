import { parseXmlRoot } from './xml-element.js';

/** A user as oned's <USER_POOL> lists it: what a chown needs. */
export interface UserInfo {
  id: number;
  /** The user's primary group. */
  gid: number;
  name: string;
}

/**
 * The user named `name` in a <USER_POOL> document (one.userpool.info), or undefined when there is
 * none. oned's user names are unique and case-sensitive.
 */
export function findUser(xml: string, name: string): UserInfo | undefined {
  const root = parseXmlRoot(xml, 'USER_POOL', 'user pool');
  for (const user of root.children('USER')) {
    if (user.text('NAME') !== name) continue;
    return { id: user.requireInt('ID'), gid: user.requireInt('GID'), name };
  }
  return undefined;
}
