// The one parser and checker of numeric option values (training options, CLI flags): a range
// rule, its wording in messages ("a positive integer", "a number in [0, 1)"), and parsing text.
import { ConfigError } from './errors.js';

/** Allowed numbers: integers only, inclusive min/max, exclusive above/below; `what` replaces the wording. */
export interface NumberRule {
  int?: boolean;
  min?: number;
  max?: number;
  above?: number;
  below?: number;
  what?: string;
}

/** "a positive integer", "a number in [0, 1)", "a number > 0", … */
export function describeRule(r: NumberRule): string {
  if (r.what) return r.what;
  const kind = r.int ? 'integer' : 'number';
  const lo = r.min ?? r.above,
    hi = r.max ?? r.below;
  if (lo !== undefined && hi !== undefined) {
    return `a ${kind} in ${r.min !== undefined ? '[' : '('}${lo}, ${hi}${r.max !== undefined ? ']' : ')'}`;
  }
  if (r.above === 0) return `a positive ${kind}`;
  if (r.int && r.min === 1) return 'a positive integer';
  if (r.min === 0) return `a non-negative ${kind}`;
  if (lo !== undefined) return `a ${kind} ${r.min !== undefined ? '>=' : '>'} ${lo}`;
  if (hi !== undefined) return `a ${kind} ${r.max !== undefined ? '<=' : '<'} ${hi}`;
  return `a finite ${kind}`;
}

/** Whether `v` is a finite number that the rule allows. */
export function fitsRule(v: unknown, r: NumberRule): v is number {
  return (
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (!r.int || Number.isInteger(v)) &&
    (r.min === undefined || v >= r.min) &&
    (r.max === undefined || v <= r.max) &&
    (r.above === undefined || v > r.above) &&
    (r.below === undefined || v < r.below)
  );
}

/** `name` must be <rule>, got <value> (a string value is quoted). */
export function ruleMessage(name: string, r: NumberRule, got: unknown): string {
  return `${name} must be ${describeRule(r)}, got ${typeof got === 'string' ? `'${got}'` : String(got)}`;
}

/** Parse command-line text as a number allowed by the rule; ConfigError `name must be …` otherwise. */
export function parseNumber(text: string, r: NumberRule, name: string): number {
  const v = text.trim() === '' ? NaN : Number(text);
  if (!fitsRule(v, r)) throw new ConfigError(ruleMessage(name, r, Number.isNaN(v) ? text : v));
  return v;
}
