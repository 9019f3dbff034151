// Field validators shared by the Kubernetes and Calico translators. They throw
// FieldError with the field path so the loader can say exactly what is wrong.

import { FieldError, joinPath } from './errors.js';
import { parseSelector, SelectorSyntaxError, type Selector } from './selector.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Kubernetes label key: [prefix/]name, prefix a DNS subdomain (<=253), name <=63. */
export function checkLabelKey(key: string, path: string): void {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !prefix.split('.').every((l) => DNS_LABEL.test(l)))) {
    throw new FieldError(path, `invalid label key ${JSON.stringify(key)}: prefix must be a DNS subdomain`);
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    throw new FieldError(path, `invalid label key ${JSON.stringify(key)}: name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`);
  }
}

/** Kubernetes label value: empty, or <=63 alphanumerics/-_. starting and ending alphanumeric. */
export function checkLabelValue(value: string, path: string): void {
  if (value.length > 63 || (value.length > 0 && !QUALIFIED_NAME.test(value))) {
    throw new FieldError(path, `invalid label value ${JSON.stringify(value)}: must be at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`);
  }
}

export function checkLabels(labels: Readonly<Record<string, string>>, path: string): void {
  for (const [k, v] of Object.entries(labels)) {
    const p = joinPath(path, k);
    checkLabelKey(k, p);
    checkLabelValue(v, p);
  }
}

/** IANA service name, as Kubernetes requires of named ports. */
export function checkPortName(name: string, path: string): void {
  const ok = name.length >= 1 && name.length <= 15 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) &&
    !name.includes('--') && /[a-z]/.test(name);
  if (!ok) {
    throw new FieldError(path, `invalid port name ${JSON.stringify(name)}: must be 1-15 lowercase alphanumerics or '-', contain a letter, and not start, end or repeat '-'`);
  }
}

export function checkInt(value: number, min: number, max: number, path: string, what: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new FieldError(path, `${what} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/** Parses a Calico selector field; the message keeps the column of the syntax error. */
export function selectorField(text: string, path: string): Selector {
  try {
    return parseSelector(text);
  } catch (e) {
    if (e instanceof SelectorSyntaxError) throw new FieldError(path, e.message);
    throw e;
  }
}

export function checkName(name: string, path: string, what: string): void {
  if (name.length > 253 || !name.split('.').every((l) => DNS_LABEL.test(l))) {
    throw new FieldError(path, `invalid ${what} ${JSON.stringify(name)}: must be a lowercase DNS name`);
  }
}
