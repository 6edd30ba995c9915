// Four suites:
//  unit - pure code, no processes, no host changes;
//  host - the node agent on the real kernel (root: hugetlbfs, cgroups, mount namespaces);
//  vm   - host tests again inside a qemu guest that is a pure cgroup v2 host (test/vm/vm-guest.ts);
//  e2e  - a real local control plane (etcd, kube-apiserver, scheduler, controller-manager, KWOK)
//         started once by the global setup and shared by every e2e file.
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testEnvironment: 'node',
};

/** @type {import('jest').Config} */
export default {
  // One worker: the host suite changes global kernel state (hugepages), and e2e suites share one
  // control plane. On the 2-core CI machines this is jest's default anyway.
  maxWorkers: 1,
  // Per-project testTimeout is not honoured: e2e and host tests wait on real processes.
  testTimeout: 180000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...common, displayName: 'host', testMatch: ['<rootDir>/test/host/**/*.test.ts'] },
    { ...common, displayName: 'vm', testMatch: ['<rootDir>/test/vm/**/*.test.ts'] },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      globalSetup: '<rootDir>/test/cluster/global-setup.ts',
      globalTeardown: '<rootDir>/test/cluster/global-teardown.ts',
    },
  ],
};
