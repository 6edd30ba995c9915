import {
  conditionsEqual,
  findCondition,
  formatTime,
  isConditionTrue,
  removeCondition,
  setCondition,
  type Condition,
} from '../../../src/runtime/conditions.js';

const t0 = new Date('2024-05-01T10:00:00.000Z');
const t1 = new Date('2024-05-01T10:05:30.250Z');

function condition(overrides: Partial<Condition> = {}): Condition {
  return {
    type: 'Ready',
    status: 'False',
    reason: 'Progressing',
    message: 'placing',
    lastTransitionTime: formatTime(t0),
    observedGeneration: 1,
    ...overrides,
  };
}

describe('setCondition', () => {
  it.each([
    {
      name: 'adds a new condition with now as transition time',
      before: [] as Condition[],
      update: { type: 'Ready', status: 'True', reason: 'Placed', message: 'ok', observedGeneration: 2 },
      expected: [condition({ status: 'True', reason: 'Placed', message: 'ok', observedGeneration: 2, lastTransitionTime: '2024-05-01T10:05:30Z' })],
    },
    {
      name: 'status flip moves lastTransitionTime',
      before: [condition()],
      update: { type: 'Ready', status: 'True', reason: 'Placed', message: 'ok', observedGeneration: 1 },
      expected: [condition({ status: 'True', reason: 'Placed', message: 'ok', lastTransitionTime: '2024-05-01T10:05:30Z' })],
    },
    {
      name: 'same status with new reason, message and generation keeps lastTransitionTime',
      before: [condition()],
      update: { type: 'Ready', status: 'False', reason: 'WaitingForNode', message: 'node busy', observedGeneration: 3 },
      expected: [condition({ reason: 'WaitingForNode', message: 'node busy', observedGeneration: 3 })],
    },
    {
      name: 'leaves other conditions alone and keeps their order',
      before: [condition({ type: 'Stalled' }), condition()],
      update: { type: 'Ready', status: 'Unknown', reason: 'Pending', message: '' },
      expected: [
        condition({ type: 'Stalled' }),
        { type: 'Ready', status: 'Unknown', reason: 'Pending', message: '', lastTransitionTime: '2024-05-01T10:05:30Z' },
      ],
    },
  ] as { name: string; before: Condition[]; update: Omit<Condition, 'lastTransitionTime'>; expected: Condition[] }[])(
    '$name',
    ({ before, update, expected }) => {
      const snapshot = structuredClone(before);
      expect(setCondition(before, update, t1)).toEqual(expected);
      expect(before).toEqual(snapshot); // pure
    },
  );

  it('accepts an undefined list', () => {
    expect(setCondition(undefined, { type: 'Ready', status: 'True', reason: 'Done', message: '' }, t0)).toHaveLength(1);
  });

  it.each(['not camel', 'lowerStart', 'With-Dash', ''])('rejects reason %p', (reason) => {
    expect(() => setCondition([], { type: 'Ready', status: 'True', reason, message: '' }, t0)).toThrow(/CamelCase/);
  });
});

describe('findCondition, isConditionTrue, removeCondition', () => {
  const list = [condition({ type: 'Stalled', status: 'True' }), condition()];
  it('finds by type', () => {
    expect(findCondition(list, 'Ready')?.reason).toBe('Progressing');
    expect(findCondition(list, 'Missing')).toBeUndefined();
    expect(findCondition(undefined, 'Ready')).toBeUndefined();
  });
  it('tells whether a type is True', () => {
    expect(isConditionTrue(list, 'Stalled')).toBe(true);
    expect(isConditionTrue(list, 'Ready')).toBe(false);
    expect(isConditionTrue(list, 'Missing')).toBe(false);
  });
  it('removes by type without touching the input', () => {
    expect(removeCondition(list, 'Stalled')).toEqual([condition()]);
    expect(list).toHaveLength(2);
  });
});

describe('conditionsEqual', () => {
  const a = condition({ type: 'A' });
  const b = condition({ type: 'B' });
  it.each([
    { name: 'same order', left: [a, b], right: [a, b], equal: true },
    { name: 'different order', left: [a, b], right: [b, a], equal: true },
    { name: 'both empty or missing', left: undefined, right: [], equal: true },
    { name: 'one missing', left: [a], right: [a, b], equal: false },
    { name: 'status differs', left: [a], right: [{ ...a, status: 'True' as const }], equal: false },
    { name: 'reason differs', left: [a], right: [{ ...a, reason: 'Other' }], equal: false },
    { name: 'message differs', left: [a], right: [{ ...a, message: 'x' }], equal: false },
    { name: 'transition time differs', left: [a], right: [{ ...a, lastTransitionTime: formatTime(t1) }], equal: false },
    { name: 'observedGeneration differs', left: [a], right: [{ ...a, observedGeneration: 2 }], equal: false },
    { name: 'same length, different types', left: [a, a], right: [a, b], equal: false },
  ])('$name → $equal', ({ left, right, equal }) => {
    expect(conditionsEqual(left, right)).toBe(equal);
    expect(conditionsEqual(right, left)).toBe(equal);
  });
});
