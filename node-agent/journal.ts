import { mkdir, open, readFile, readdir, rm } from 'node:fs/promises';
import { posix } from 'node:path';
import { isErrno } from './host/kernel-files.js';
import type { VnfHostPlan } from './validate.js';

/** What a step recorded for its undo (the original driver, the cgroups written). */
export type StepData = Record<string, unknown>;

/** One line of a VNF's journal. */
export type JournalRecord =
  /** The validated plan; first line of every journal. */
  | { op: 'plan'; plan: VnfHostPlan }
  /** A step is about to change the host; `data` is what its undo needs. */
  | { op: 'begin'; step: string; data?: StepData }
  /** The step's change is complete. */
  | { op: 'done'; step: string; data?: StepData }
  /** The step is about to be reversed. */
  | { op: 'undo'; step: string }
  /** The step is reversed. */
  | { op: 'undone'; step: string }
  /** Teardown has started: from here on, only undo. */
  | { op: 'teardown' };

/** Where a step stands according to the journal. */
export type StepStatus = 'begun' | 'done' | 'undoing' | 'undone';

/** A step as the journal knows it. */
export interface JournaledStep {
  name: string;
  status: StepStatus;
  data?: StepData;
}

/** A journal replayed. */
export interface JournalState {
  plan?: VnfHostPlan;
  /** Steps in the order they were begun. */
  steps: Map<string, JournaledStep>;
  tearingDown: boolean;
}

/** Folds records into the state they describe. */
export function replayJournal(records: readonly JournalRecord[]): JournalState {
  const state: JournalState = { steps: new Map(), tearingDown: false };
  for (const record of records) {
    switch (record.op) {
      case 'plan':
        state.plan = record.plan;
        break;
      case 'teardown':
        state.tearingDown = true;
        break;
      case 'begin': {
        const existing = state.steps.get(record.step);
        // A step begun again after being undone (a replaced pod's ready signal) starts over.
        if (existing && existing.status !== 'undone') break;
        if (existing) state.steps.delete(record.step);
        state.steps.set(record.step, { name: record.step, status: 'begun', data: record.data });
        break;
      }
      case 'done': {
        const step = state.steps.get(record.step);
        if (step) {
          step.status = 'done';
          if (record.data) step.data = { ...step.data, ...record.data };
        }
        break;
      }
      case 'undo':
      case 'undone': {
        const step = state.steps.get(record.step);
        if (step) step.status = record.op === 'undo' ? 'undoing' : 'undone';
        break;
      }
    }
  }
  return state;
}

/** Options of a {@link JournalStore}. */
export interface JournalStoreOptions {
  /**
   * Called after every record is durable. The crash tests kill the agent from here to stop it
   * between any two host changes. Default: none.
   */
  afterAppend?: (record: JournalRecord, uid: string) => void;
}

/**
 * The on-disk journals of the VNFs this agent has touched, one JSON-lines file per VNF UID under
 * `<stateRoot>/journal`. A record is appended and fsynced before the host change it announces,
 * so after a crash a restarted agent knows every change that may have been made.
 */
export class JournalStore {
  readonly dir: string;
  private readonly afterAppend?: JournalStoreOptions['afterAppend'];

  constructor(stateRoot: string, options: JournalStoreOptions = {}) {
    this.dir = posix.join(stateRoot, 'journal');
    this.afterAppend = options.afterAppend;
  }

  /** The journal of one VNF. */
  journal(uid: string): VnfJournal {
    if (!/^[0-9a-f-]{36}$/.test(uid)) throw new RangeError(`"${uid}" is not a Kubernetes UID`);
    return new VnfJournal(this, uid, posix.join(this.dir, `${uid}.jsonl`));
  }

  /** UIDs of every VNF with a journal. */
  async uids(): Promise<string[]> {
    try {
      return (await readdir(this.dir))
        .map((file) => /^([0-9a-f-]{36})\.jsonl$/.exec(file)?.[1])
        .filter((uid): uid is string => uid !== undefined)
        .sort();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
  }

  /** Every journal replayed, by UID. */
  async states(): Promise<Map<string, JournalState>> {
    const states = new Map<string, JournalState>();
    for (const uid of await this.uids()) states.set(uid, await this.journal(uid).state());
    return states;
  }

  /** @internal */
  notify(record: JournalRecord, uid: string): void {
    this.afterAppend?.(record, uid);
  }
}

/** The journal of one VNF. */
export class VnfJournal {
  constructor(
    private readonly store: JournalStore,
    readonly uid: string,
    readonly path: string,
  ) {}

  /** The records on disk; a torn last line (a crash mid-append) is ignored. */
  async records(): Promise<JournalRecord[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const records: JournalRecord[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        records.push(JSON.parse(line) as JournalRecord);
      } catch {
        // A line torn by a crash mid-append: its step never began.
      }
    }
    return records;
  }

  /** Replayed state. */
  async state(): Promise<JournalState> {
    return replayJournal(await this.records());
  }

  /** Whether the journal exists. */
  async exists(): Promise<boolean> {
    return (await this.records()).length > 0;
  }

  /** Appends one record and waits until it is on disk. */
  async append(record: JournalRecord): Promise<void> {
    const created = !(await this.exists());
    if (created) await mkdir(this.store.dir, { recursive: true, mode: 0o700 });
    const handle = await open(this.path, 'a+', 0o600);
    try {
      // A line torn by a crash would glue onto this one: start on a fresh line.
      const { size } = await handle.stat();
      const last = Buffer.alloc(1);
      if (size > 0) await handle.read(last, 0, 1, size - 1);
      const prefix = size > 0 && last[0] !== 0x0a ? '\n' : '';
      await handle.write(`${prefix}${JSON.stringify(record)}\n`);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    if (created) await syncDirectory(this.store.dir);
    this.store.notify(record, this.uid);
  }

  /** Deletes the journal: the last act of a complete teardown. */
  async remove(): Promise<void> {
    await rm(this.path, { force: true });
    await syncDirectory(this.store.dir).catch(() => undefined);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
