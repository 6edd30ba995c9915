import { describe, expect, test } from '@jest/globals';
import type { ReadinessReport } from '../../../src/metrics/http-server.js';
import { controllerReadiness } from '../../../src/metrics/readiness.js';

const informer = (name: string, synced: boolean) => ({ name, hasSynced: () => synced });

describe('controllerReadiness', () => {
  test.each<{ name: string; leading: boolean; synced: [string, boolean][]; report: ReadinessReport }>([
    { name: 'standby, caches empty', leading: false, synced: [['pods', false]], report: { ready: true, message: 'standby, waiting for the leader lease' } },
    {
      name: 'leader before its informers synced',
      leading: true,
      synced: [['pods', false], ['nfvnodes', true], ['virtualnetworkfunctions', false]],
      report: { ready: false, message: 'leading, waiting for informers to sync: pods, virtualnetworkfunctions' },
    },
    { name: 'leader with every informer synced', leading: true, synced: [['pods', true], ['nfvnodes', true]], report: { ready: true, message: 'leading, 2 informers synced' } },
  ])('$name', ({ leading, synced, report }) => {
    const check = controllerReadiness({ isLeading: () => leading, informers: synced.map(([name, done]) => informer(name, done)) });
    expect(check()).toEqual(report);
  });

  test('is evaluated on every call', () => {
    let synced = false;
    const check = controllerReadiness({ isLeading: () => true, informers: [{ name: 'pods', hasSynced: () => synced }] });
    expect(check().ready).toBe(false);
    synced = true;
    expect(check().ready).toBe(true);
  });
});
