// Kubernetes LabelSelector (matchLabels + matchExpressions) translated into the
// Calico selector AST, as Calico's converter does: k=v -> k == "v", In -> in {},
// NotIn -> not in {}, Exists -> has(k), DoesNotExist -> !has(k); all ANDed; {} = all().

import { EqNode, HasNode, InNode, NotInNode, and, not, type SelectorNode } from './selector/ast.js';
import { Selector } from './selector.js';
import { FieldError, joinPath } from './errors.js';
import { checkLabelKey, checkLabelValue } from './validation.js';

export interface LabelSelectorRequirement {
  key: string;
  operator: string;
  values?: readonly string[] | null;
}

export interface LabelSelectorSpec {
  matchLabels?: Readonly<Record<string, string>> | null;
  matchExpressions?: readonly LabelSelectorRequirement[] | null;
}

export function fromLabelSelector(spec: LabelSelectorSpec, path: string): Selector {
  const terms: SelectorNode[] = [];
  const matchLabels = spec.matchLabels ?? {};
  for (const key of Object.keys(matchLabels).sort()) {
    const p = joinPath(joinPath(path, 'matchLabels'), key);
    checkLabelKey(key, p);
    checkLabelValue(matchLabels[key], p);
    terms.push(new EqNode(key, matchLabels[key]));
  }
  (spec.matchExpressions ?? []).forEach((req, i) => {
    const p = joinPath(joinPath(path, 'matchExpressions'), i);
    checkLabelKey(req.key, joinPath(p, 'key'));
    const values = req.values ?? [];
    values.forEach((v, j) => checkLabelValue(v, joinPath(joinPath(p, 'values'), j)));
    switch (req.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0) throw new FieldError(joinPath(p, 'values'), `must be non-empty when operator is ${req.operator}`);
        terms.push(req.operator === 'In' ? new InNode(req.key, values) : new NotInNode(req.key, values));
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0) throw new FieldError(joinPath(p, 'values'), `must be empty when operator is ${req.operator}`);
        terms.push(req.operator === 'Exists' ? new HasNode(req.key) : not(new HasNode(req.key)));
        break;
      default:
        throw new FieldError(joinPath(p, 'operator'), `expected one of In, NotIn, Exists, DoesNotExist, got ${JSON.stringify(req.operator)}`);
    }
  });
  return new Selector(and(terms));
}
