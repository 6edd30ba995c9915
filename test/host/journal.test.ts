import { appendFileSync, readFileSync } from 'node:fs';
import { JournalStore, replayJournal } from '../../node-agent/journal.js';
import { TempTree } from './helpers/host-fixtures.js';

const UID = '6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b';

describe('journal', () => {
  let tree: TempTree;
  beforeEach(() => (tree = new TempTree('nfv-journal')));
  afterEach(() => tree.cleanup());

  it('replays begun, done, undoing and undone steps in begin order', () => {
    const state = replayJournal([
      { op: 'begin', step: 'a' },
      { op: 'done', step: 'a' },
      { op: 'begin', step: 'b', data: { originalDriver: 'ice' } },
      { op: 'begin', step: 'c' },
      { op: 'done', step: 'c', data: { cgroups: 'x' } },
      { op: 'teardown' },
      { op: 'undo', step: 'c' },
      { op: 'undone', step: 'c' },
      { op: 'undo', step: 'b' },
    ]);
    expect(state.tearingDown).toBe(true);
    expect([...state.steps.values()]).toEqual([
      { name: 'a', status: 'done', data: undefined },
      { name: 'b', status: 'undoing', data: { originalDriver: 'ice' } },
      { name: 'c', status: 'undone', data: { cgroups: 'x' } },
    ]);
  });

  it('survives a line torn by a crash and keeps appending on a fresh line', async () => {
    const store = new JournalStore(tree.dir);
    const journal = store.journal(UID);
    await journal.append({ op: 'begin', step: 'hugetlbfs' });
    appendFileSync(journal.path, '{"op":"done","st');
    await journal.append({ op: 'begin', step: 'cpu-mask' });
    expect(readFileSync(journal.path, 'utf8').split('\n')).toHaveLength(4);
    const state = await journal.state();
    expect([...state.steps.values()].map((s) => `${s.name}:${s.status}`)).toEqual(['hugetlbfs:begun', 'cpu-mask:begun']);
    expect(await store.uids()).toEqual([UID]);
    await journal.remove();
    expect(await store.uids()).toEqual([]);
  });

  it('refuses a UID that could leave the journal directory', () => {
    expect(() => new JournalStore(tree.dir).journal('../../etc/passwd')).toThrow(RangeError);
  });
});
