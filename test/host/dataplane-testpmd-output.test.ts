/** The reading of testpmd's output that the data-plane tests and the benchmark rely on. */
import { lcoreArgs, latestRxPackets, maxHeapBytes, parseTestpmdOutput } from './dataplane/testpmd-output.js';

const ESC = String.fromCharCode(27);

/** Excerpts of a real run of Debian's dpdk-testpmd 22.11 in a VNF sandbox (lib.eal:debug). */
const RUN = `EAL: Detected lcore 1 as core 1 on socket 0
EAL: Detected CPU lcores: 1
EAL: Detected NUMA nodes: 1
EAL: PCI device 0000:81:00.0 on NUMA socket 0
EAL:   probe driver: 8086:1572 net_i40e
EAL: Requested device 0000:81:00.0 cannot be used
EAL: Allocating 16 pages of size 2M on socket 0
EAL: Heap on socket 0 was expanded by 6MB
EAL: Heap on socket 0 was shrunk by 4MB
Port 0: 06:C9:5C:14:45:1C
Port 1: 8E:3E:C1:84:97:66
Logical Core 1 (socket 0) forwards packets on 2 streams:
${ESC}[2J${ESC}[1;1H
Port statistics ====================================
  ######################## NIC statistics for port 0  ########################
  RX-packets: 599968     RX-missed: 0          RX-bytes:  0
  RX-errors: 0
  RX-nombuf:  0         
  TX-packets: 896        TX-errors: 0          TX-bytes:  0

  Throughput (since last show)
  Rx-pps:            0          Rx-bps:            0
  Tx-pps:            0          Tx-bps:            0
  ############################################################################
  ######################## NIC statistics for port 1  ########################
  RX-packets: 46901504   RX-missed: 0          RX-bytes:  0
  RX-errors: 0
  RX-nombuf:  0         
  TX-packets: 46295808   TX-errors: 0          TX-bytes:  0

  Throughput (since last show)
  Rx-pps:     46281287          Rx-bps:            0
  Tx-pps:     46281255          Tx-bps:            0
  ############################################################################
  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++
  RX-packets: 408917120      RX-dropped: 0             RX-total: 408917120
  TX-packets: 408917120      TX-dropped: 0             TX-total: 408917120
  ++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++
  CPU cycles/packet=27.92 (total cycles=6565475494 / total io packets=235111936) at 2300 MHz Clock
`;

const FAILED = `EAL: FATAL: Cannot init memory
EAL: Cannot init memory
EAL: Error - exiting with code: 1
  Cause: Cannot init EAL: Cannot allocate memory
`;

describe('parseTestpmdOutput', () => {
  test('reads what EAL detected, the ports, the statistics and the totals', () => {
    const report = parseTestpmdOutput(RUN);
    expect(report).toMatchObject({ detectedLcores: 1, numaNodes: 1, pciDevices: ['0000:81:00.0'], forwardingLcores: [1], cyclesPerPacket: 27.92 });
    expect([...report.ports]).toEqual([
      [0, '06:C9:5C:14:45:1C'],
      [1, '8E:3E:C1:84:97:66'],
    ]);
    expect(report.stats).toEqual([
      { port: 0, rxPackets: 599968, txPackets: 896, rxPps: 0, txPps: 0 },
      { port: 1, rxPackets: 46901504, txPackets: 46295808, rxPps: 46281287, txPps: 46281255 },
    ]);
    expect(report.totals).toEqual({ rxPackets: 408917120, txPackets: 408917120 });
    expect(report.fatal).toBeUndefined();
    expect(latestRxPackets(report, 1)).toBe(46901504);
    expect(latestRxPackets(report, 7)).toBe(0);
  });

  test('reads a fatal EAL error and its cause', () => {
    const report = parseTestpmdOutput(FAILED);
    expect(report.fatal).toEqual({ code: 1, cause: 'Cannot init EAL: Cannot allocate memory' });
    expect(report.memoryErrors).toEqual(['EAL: FATAL: Cannot init memory', 'EAL: Cannot init memory', 'Cause: Cannot init EAL: Cannot allocate memory']);
  });
});

test('maxHeapBytes adds preallocated pages and heap growth, and keeps the peak', () => {
  expect(maxHeapBytes(RUN)).toBe((32 + 6) * 2 ** 20);
  expect(maxHeapBytes('')).toBe(0);
});

test('lcoreArgs gives a single-CPU VNF a main and a forwarding lcore on its CPU', () => {
  expect(lcoreArgs([3])).toEqual(['--lcores', '0@3,1@3']);
  expect(lcoreArgs([2, 3])).toEqual(['-l', '2,3']);
});
