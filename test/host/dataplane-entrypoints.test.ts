/**
 * The VNF images' entrypoints (images/l2fwd/vnf-l2fwd, images/l3fwd/vnf-l3fwd) turn what the
 * operator renders (NFV_EAL_ARGS, NFV_EAL_CORELIST) and the VNF's spec.args into the app's command
 * line. Run here with Debian's /bin/sh (dash, as in the images) and a stub app that prints its
 * arguments, so no DPDK is needed; the data-plane tests run the real apps.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TempTree } from './helpers/host-fixtures.js';

const execFileAsync = promisify(execFile);
const SHELL = existsSync('/bin/dash') ? '/bin/dash' : '/bin/sh';
const entrypoint = (image: string) => fileURLToPath(new URL(`../../images/${image}/vnf-${image}`, import.meta.url));
const RENDERED = '--huge-dir /dev/hugepages --file-prefix vnf-0123abcd --socket-mem 64';

describe('VNF image entrypoints', () => {
  let tree: TempTree;

  beforeAll(() => {
    tree = new TempTree('nfv-entrypoints');
    for (const app of ['dpdk-testpmd', 'dpdk-l3fwd']) {
      writeFileSync(tree.path(app), `#!/bin/sh\nprintf '%s\\n' "${app}" "$@"\n`);
      chmodSync(tree.path(app), 0o755);
    }
  });

  afterAll(() => tree.cleanup());

  /** The app's arguments as the entrypoint calls it, or the entrypoint's failure. */
  async function run(image: 'l2fwd' | 'l3fwd', env: Record<string, string>, args: string[] = []): Promise<{ argv: string[]; code: number; stderr: string }> {
    try {
      const { stdout } = await execFileAsync(SHELL, [entrypoint(image), ...args], { env: { PATH: `${tree.dir}:/usr/bin:/bin`, ...env } });
      return { argv: stdout.trimEnd().split('\n'), code: 0, stderr: '' };
    } catch (err) {
      const failed = err as { code?: number; stderr?: string };
      return { argv: [], code: failed.code ?? -1, stderr: failed.stderr ?? '' };
    }
  }

  const testpmdDefaults = ['--forward-mode=io', '--auto-start', '--stats-period', '10', '--total-num-mbufs', '8192', '--record-core-cycles'];

  test('l2fwd gives a single-CPU VNF a forwarding lcore on its CPU: -l C becomes --lcores 0@C,1@C', async () => {
    const { argv } = await run('l2fwd', { NFV_EAL_ARGS: `-l 3 ${RENDERED} -a 0000:81:00.0`, NFV_EAL_CORELIST: '3' });
    expect(argv).toEqual(['dpdk-testpmd', '--lcores', '0@3,1@3', ...RENDERED.split(' '), '-a', '0000:81:00.0', '--', ...testpmdDefaults]);
  });

  test.each([
    ['several CPUs', '2,3'],
    ['a range', '2-5'],
  ])('l2fwd keeps -l for %s: one lcore per CPU, the first one main', async (_name, cpus) => {
    const { argv } = await run('l2fwd', { NFV_EAL_ARGS: `-l ${cpus} ${RENDERED}`, NFV_EAL_CORELIST: cpus });
    expect(argv.slice(0, 3)).toEqual(['dpdk-testpmd', '-l', cpus]);
  });

  test('l2fwd leaves a -l that is not the rendered single CPU alone', async () => {
    const { argv } = await run('l2fwd', { NFV_EAL_ARGS: `-l 13 ${RENDERED}`, NFV_EAL_CORELIST: '1' });
    expect(argv.slice(0, 3)).toEqual(['dpdk-testpmd', '-l', '13']);
  });

  test('l2fwd: spec.args before "--" are EAL options after the rendered ones, the rest testpmd options after its defaults', async () => {
    const { argv } = await run('l2fwd', { NFV_EAL_ARGS: `-l 1 ${RENDERED}`, NFV_EAL_CORELIST: '1', NFV_L2FWD_MODE: 'macswap' }, ['--vdev', 'net_null0', '--', '--stats-period', '1']);
    expect(argv).toEqual([
      'dpdk-testpmd',
      '--lcores',
      '0@1,1@1',
      ...RENDERED.split(' '),
      '--vdev',
      'net_null0',
      '--',
      '--forward-mode=macswap',
      ...testpmdDefaults.slice(1),
      '--stats-period',
      '1',
    ]);
  });

  test('l2fwd: spec.args without "--" are all testpmd options', async () => {
    const { argv } = await run('l2fwd', { NFV_EAL_ARGS: `-l 1,2 ${RENDERED}`, NFV_EAL_CORELIST: '1,2' }, ['--port-topology=loop']);
    expect(argv.slice(argv.indexOf('--'))).toEqual(['--', ...testpmdDefaults, '--port-topology=loop']);
  });

  test('l2fwd refuses to start without NFV_EAL_ARGS or with an unknown mode', async () => {
    expect(await run('l2fwd', {})).toMatchObject({ code: 2, stderr: expect.stringContaining('NFV_EAL_ARGS must hold the EAL options of the VNF') });
    expect(await run('l2fwd', { NFV_EAL_ARGS: '-l 1', NFV_L2FWD_MODE: 'rxonly' })).toMatchObject({ code: 2, stderr: expect.stringContaining("NFV_L2FWD_MODE must be io or macswap, not 'rxonly'") });
  });

  test('l3fwd keeps -l (it polls on the main lcore), takes EAL options from spec.args and polls both ports on the first CPU', async () => {
    const { argv } = await run('l3fwd', { NFV_EAL_ARGS: `-l 5 ${RENDERED}`, NFV_EAL_CORELIST: '5' }, ['--vdev', 'net_ring0', '--', '--eth-dest=0,02:00:00:00:00:01']);
    expect(argv).toEqual([
      'dpdk-l3fwd',
      '-l',
      '5',
      ...RENDERED.split(' '),
      '--vdev',
      'net_ring0',
      '--',
      '-p',
      '0x3',
      '-P',
      '--lookup=lpm',
      '--parse-ptype',
      '--config=(0,0,5),(1,0,5)',
      '--eth-dest=0,02:00:00:00:00:01',
    ]);
  });
});
