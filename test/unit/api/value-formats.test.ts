import { describe, expect, test } from '@jest/globals';
import { formatCpuList, parseCpuList } from '../../../src/api/cpu-list.js';
import { formatByteQuantity, parseByteQuantity } from '../../../src/api/quantity.js';
import { isPciAddress } from '../../../src/api/pci-address.js';
import { memifLinkDir, vnfHostPaths } from '../../../src/api/host-paths.js';

describe('CPU lists', () => {
  test.each([
    ['0-3,8', [0, 1, 2, 3, 8]],
    ['', []],
    ['5', [5]],
    ['8,0-1,1', [0, 1, 8]],
  ])('%s', (text, cpus) => {
    expect(parseCpuList(text)).toEqual(cpus);
  });
  test.each([[[0, 1, 2, 3, 8], '0-3,8'], [[], ''], [[3, 1, 2], '1-3'], [[1, 3, 5], '1,3,5']])('format %j', (cpus, text) => {
    expect(formatCpuList(cpus)).toBe(text);
  });
  test.each(['a', '3-1', '1,,x'])('rejects %s', (text) => expect(() => parseCpuList(text)).toThrow(RangeError));
});

describe('byte quantities', () => {
  test.each([
    ['2Mi', 2 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['3Gi', 3 * 2 ** 30],
    ['4096', 4096],
  ])('%s', (text, bytes) => {
    expect(parseByteQuantity(text)).toBe(bytes);
    expect(parseByteQuantity(formatByteQuantity(bytes))).toBe(bytes);
  });
  test.each(['2G', '-1Gi', '0Mi', '1.5Gi', ''])('rejects %s', (text) => expect(() => parseByteQuantity(text)).toThrow(/byte quantity/));
});

describe('PCI addresses', () => {
  test.each([
    ['0000:3b:00.1', true],
    ['3b:00.1', false],
    ['0000:3B:00.1', false],
    ['0000:3b:00.8', false],
    ['0000:3b:20.0', false],
  ])('%s -> %s', (text, ok) => expect(isPciAddress(text)).toBe(ok));
});

describe('host paths', () => {
  test('derive from the UID under the state root', () => {
    const paths = vnfHostPaths('/var/lib/nfv-operator', '3f2a3c1e-0000-4000-8000-0123456789ab');
    expect(paths.hugepages).toBe('/var/lib/nfv-operator/vnfs/3f2a3c1e-0000-4000-8000-0123456789ab/hugepages');
    expect(memifLinkDir(paths.memif!, 'ns', 'a', 'b')).toBe('/var/lib/nfv-operator/memif/ns/a.b');
  });
  test.each(['../../etc', '', 'x/y'])('refuse a UID that could leave the root: %j', (uid) => {
    expect(() => vnfHostPaths('/r', uid)).toThrow(/not a Kubernetes UID/);
  });
});
