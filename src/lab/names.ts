// Names of everything the lab creates. Every network namespace of lab NAME starts with `NAME-`;
// lab names have no "-" so one lab's prefix can never match another lab's namespaces, and
// `lab down` can sweep by prefix after a crash.
import { LabError } from './errors.js';

export const DEFAULT_LAB_NAME = 'sluice';
const LAB_NAME = /^[a-z][a-z0-9_]{0,23}$/;

export function checkLabName(name: string): string {
  if (!LAB_NAME.test(name)) {
    throw new LabError(
      `invalid lab name ${JSON.stringify(name)}: use 1-24 lowercase letters, digits or "_", starting with a letter ` +
        `(no "-": the name prefixes every namespace, as in ${DEFAULT_LAB_NAME}-h1)`,
    );
  }
  return name;
}

export const netnsPrefix = (lab: string): string => `${lab}-`;
export const underlayNetns = (lab: string): string => `${lab}-ul`;
export const hostName = (i: number): string => `h${i}`;
export const hostNetns = (lab: string, i: number): string => `${lab}-${hostName(i)}`;

/** Lowercase, and anything outside [a-z0-9_.-] becomes "-", so the name is a safe file name. */
export function sanitize(part: string): string {
  return part.toLowerCase().replace(/[^a-z0-9_.-]/g, '-');
}

/**
 * `<lab>-<namespace>-<pod>`, readable and unique: sanitizing can make two pods collide
 * (`a-b`/`c` and `a`/`b-c`), so later ones get a numeric suffix. `taken` is updated.
 */
export function podNetns(lab: string, namespace: string, pod: string, taken: Set<string>): string {
  const base = `${lab}-${sanitize(namespace)}-${sanitize(pod)}`.slice(0, 240);
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  taken.add(name);
  return name;
}
