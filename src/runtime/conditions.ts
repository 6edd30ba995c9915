import { isCamelCaseReason } from './errors.js';

/** Status of a condition. */
export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** A Kubernetes-convention condition (metav1.Condition). */
export interface Condition {
  /** CamelCase type, e.g. `Ready`, `Stalled`, `Reconciling`. */
  type: string;
  status: ConditionStatus;
  /** CamelCase machine-readable reason of the last change. */
  reason: string;
  /** Human-readable detail; say what is wrong and what to do about it. */
  message: string;
  /** RFC 3339 time (second precision) the status last flipped. */
  lastTransitionTime: string;
  /** `metadata.generation` the condition was computed from. */
  observedGeneration?: number;
}

/** A condition to set: `lastTransitionTime` is managed by {@link setCondition}. */
export type ConditionUpdate = Omit<Condition, 'lastTransitionTime'>;

/** RFC 3339 with whole seconds, as `metav1.Time` serializes. */
export function formatTime(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Returns a new list with `update` set. `lastTransitionTime` becomes `now` only when the condition
 * is new or its status flips; a changed reason or message alone keeps the old time, so the time
 * tells how long the object has been in its current state. Order of the other conditions is kept;
 * a new condition goes last. The input list is not modified.
 *
 * @throws TypeError if `reason` is not CamelCase.
 */
export function setCondition(list: readonly Condition[] | undefined, update: ConditionUpdate, now: Date): Condition[] {
  if (!isCamelCaseReason(update.reason)) {
    throw new TypeError(`condition ${update.type}: reason must be CamelCase, got "${update.reason}"`);
  }
  const conditions = [...(list ?? [])];
  const index = conditions.findIndex((c) => c.type === update.type);
  const existing = index >= 0 ? conditions[index] : undefined;
  const lastTransitionTime =
    existing && existing.status === update.status ? existing.lastTransitionTime : formatTime(now);
  const next: Condition = { ...stripUndefined(update), lastTransitionTime };
  if (index >= 0) conditions[index] = next;
  else conditions.push(next);
  return conditions;
}

/** Returns a new list without the condition of `type`. */
export function removeCondition(list: readonly Condition[] | undefined, type: string): Condition[] {
  return (list ?? []).filter((c) => c.type !== type);
}

/** The condition of `type`, if present. */
export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** Whether the condition of `type` is present with status True. */
export function isConditionTrue(list: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(list, type)?.status === 'True';
}

/**
 * Whether two lists hold the same conditions, every field equal, in any order. Used to skip
 * status writes that would change nothing.
 */
export function conditionsEqual(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  const left = a ?? [];
  const right = b ?? [];
  if (left.length !== right.length) return false;
  const containsAll = (from: readonly Condition[], to: readonly Condition[]) =>
    from.every((condition) => to.some((other) => sameCondition(condition, other)));
  return containsAll(left, right) && containsAll(right, left);
}

function sameCondition(a: Condition, b: Condition): boolean {
  return (
    a.type === b.type &&
    a.status === b.status &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.lastTransitionTime === b.lastTransitionTime &&
    a.observedGeneration === b.observedGeneration
  );
}

function stripUndefined(update: ConditionUpdate): ConditionUpdate {
  const { observedGeneration, ...rest } = update;
  return observedGeneration === undefined ? rest : { ...rest, observedGeneration };
}
