import type { Logger } from 'pino';
import { isAlreadyExists, isConflict, isNotFound } from './api-error.js';
import { realClock, sleep, type Clock } from './clock.js';
import type { KubeClient } from './kube-client.js';
import { coreResources, type KubeObject } from './kube-object.js';

/** A coordination.k8s.io/v1 Lease. */
export interface Lease extends KubeObject {
  spec?: {
    /** Empty or absent: nobody holds it. */
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    /** MicroTime (RFC 3339 with 6 fractional digits). */
    acquireTime?: string;
    /** MicroTime (RFC 3339 with 6 fractional digits). */
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** Options of a {@link LeaderElector}. */
export interface LeaderElectionOptions {
  client: Pick<KubeClient, 'get' | 'create' | 'update'>;
  /** Namespace of the Lease. */
  namespace: string;
  /** Name of the Lease, e.g. `nfv-operator-leader`. */
  name: string;
  /** Unique per replica, e.g. the pod name plus a random suffix. */
  identity: string;
  logger: Logger;
  /** How long a lease stays valid without renewal; others take over after this. Default 15. */
  leaseDurationSeconds?: number;
  /** The leader gives up if it could not renew for this long. Default 10000. */
  renewDeadlineMs?: number;
  /** Wait between attempts to acquire or renew. Acquire attempts add up to 20% jitter. Default 2000. */
  retryPeriodMs?: number;
  /** Default: {@link realClock}. */
  clock?: Clock;
  /** Uniform random source in [0, 1) for jitter. Default `Math.random`. */
  random?: () => number;
  /** Called when this replica becomes leader; `signal` aborts the moment it stops being one. */
  onStartedLeading?: (signal: AbortSignal) => void;
  /** Called when this replica stops leading: lost, or released by {@link LeaderElector.stop}. */
  onStoppedLeading?: () => void;
  /** Called when a different holder is observed (including this replica). */
  onNewLeader?: (identity: string) => void;
}

type AttemptResult = 'acquired' | 'heldByOther' | 'failed';

/**
 * Leader election on a Lease, as client-go does it:
 *
 * - A replica takes the lease when it is free (no holder, as after a release) or when its holder
 *   has not renewed it for `leaseDurationSeconds`, measured on this replica's own clock from when
 *   it last saw the lease change, so clock skew between nodes does not matter.
 * - Every write is an update carrying the resourceVersion that was read; of two replicas racing,
 *   one gets 409 Conflict and stays a follower. So there is at most one leader.
 * - The leader renews every `retryPeriodMs`; if it cannot for `renewDeadlineMs` (shorter than the
 *   lease duration, so it stops before anyone else may start) or sees another holder, it stops leading.
 * - {@link stop} releases the lease (empty holder) so a standby takes over at once.
 */
export class LeaderElector {
  private readonly options: Required<
    Pick<LeaderElectionOptions, 'leaseDurationSeconds' | 'renewDeadlineMs' | 'retryPeriodMs'>
  >;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly logger: Logger;
  private readonly stopping = new AbortController();
  private leading = false;
  private observedResourceVersion?: string;
  private observedAtMs = 0;
  private observedHolder = '';
  private running?: Promise<void>;

  /** @throws RangeError unless leaseDuration > renewDeadline > 1.2 × retryPeriod. */
  constructor(private readonly config: LeaderElectionOptions) {
    this.options = {
      leaseDurationSeconds: config.leaseDurationSeconds ?? 15,
      renewDeadlineMs: config.renewDeadlineMs ?? 10_000,
      retryPeriodMs: config.retryPeriodMs ?? 2_000,
    };
    const { leaseDurationSeconds, renewDeadlineMs, retryPeriodMs } = this.options;
    if (!(leaseDurationSeconds * 1000 > renewDeadlineMs)) {
      throw new RangeError('leaseDurationSeconds must be longer than renewDeadlineMs, or two leaders can overlap');
    }
    if (!(renewDeadlineMs > retryPeriodMs * 1.2)) {
      throw new RangeError('renewDeadlineMs must exceed 1.2 × retryPeriodMs, or one slow renewal loses the lease');
    }
    this.clock = config.clock ?? realClock;
    this.random = config.random ?? Math.random;
    this.logger = config.logger.child({ lease: `${config.namespace}/${config.name}`, identity: config.identity });
  }

  /** Whether this replica holds the lease right now. */
  isLeader(): boolean {
    return this.leading;
  }

  /** The holder last observed, `''` if none. */
  currentLeader(): string {
    return this.observedHolder;
  }

  /**
   * Campaigns until elected, then renews until leadership is lost or {@link stop} is called.
   * Resolves after `onStoppedLeading` has run (if it was leading). Calling it again returns the
   * same promise; an elector is used once.
   */
  run(): Promise<void> {
    this.running ??= this.campaign();
    return this.running;
  }

  /** Stops campaigning or renewing and, if leading, releases the lease. Resolves when done. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  private async campaign(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs } = this.options;
    const stopped = this.stopping.signal;
    for (;;) {
      if (stopped.aborted) return;
      if ((await this.attempt(renewDeadlineMs)) === 'acquired') break;
      const waitMs = retryPeriodMs * (1 + 0.2 * this.random());
      if (!(await sleep(this.clock, waitMs, stopped))) return;
    }
    const leadership = new AbortController();
    this.leading = true;
    this.logger.info('became leader');
    this.config.onStartedLeading?.(leadership.signal);

    let lastRenewMs = this.clock.now();
    let lost = false;
    while (!stopped.aborted) {
      if (!(await sleep(this.clock, retryPeriodMs, stopped))) break;
      const remainingMs = renewDeadlineMs - (this.clock.now() - lastRenewMs);
      const result = await this.attempt(Math.max(remainingMs, 1));
      if (result === 'acquired') {
        lastRenewMs = this.clock.now();
        continue;
      }
      if (stopped.aborted) break;
      if (result === 'heldByOther' || this.clock.now() - lastRenewMs >= renewDeadlineMs) {
        lost = true;
        break;
      }
    }
    this.leading = false;
    leadership.abort();
    if (lost) this.logger.error('leadership lost');
    else await this.release();
    this.config.onStoppedLeading?.();
  }

  /** One try to take or renew the lease, given up after `timeoutMs`. */
  private async attempt(timeoutMs: number): Promise<AttemptResult> {
    const deadline = new AbortController();
    const timer = this.clock.setTimer(() => deadline.abort(), timeoutMs);
    const onStop = () => deadline.abort();
    this.stopping.signal.addEventListener('abort', onStop, { once: true });
    try {
      return await this.tryAcquireOrRenew(deadline.signal);
    } catch (err) {
      if (!this.stopping.signal.aborted) this.logger.warn({ err }, 'could not acquire or renew lease');
      return 'failed';
    } finally {
      timer.cancel();
      this.stopping.signal.removeEventListener('abort', onStop);
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<AttemptResult> {
    const { namespace, name, identity } = this.config;
    const nowMs = this.clock.now();
    let lease: Lease;
    try {
      lease = await this.config.client.get<Lease>(coreResources.leases, name, { namespace, signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        const created = await this.config.client.create<Lease>(
          coreResources.leases,
          {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: this.options.leaseDurationSeconds,
              acquireTime: formatMicroTime(nowMs),
              renewTime: formatMicroTime(nowMs),
              leaseTransitions: 0,
            },
          },
          { signal },
        );
        this.observe(created, nowMs);
        return 'acquired';
      } catch (createErr) {
        if (isAlreadyExists(createErr) || isConflict(createErr)) return 'heldByOther';
        throw createErr;
      }
    }
    this.observe(lease, nowMs);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const durationMs = (spec.leaseDurationSeconds ?? this.options.leaseDurationSeconds) * 1000;
    if (holder && holder !== identity && this.observedAtMs + durationMs > nowMs) return 'heldByOther';

    const takingOver = holder !== identity;
    const update: Lease = {
      ...lease,
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: this.options.leaseDurationSeconds,
        acquireTime: takingOver || !spec.acquireTime ? formatMicroTime(nowMs) : spec.acquireTime,
        renewTime: formatMicroTime(nowMs),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver ? 1 : 0),
      },
    };
    try {
      const updated = await this.config.client.update<Lease>(coreResources.leases, update, { signal });
      this.observe(updated, nowMs);
      return 'acquired';
    } catch (err) {
      // Someone else wrote the lease since we read it: they won this round.
      if (isConflict(err)) return 'heldByOther';
      throw err;
    }
  }

  /** Hands the lease back so a standby need not wait for it to expire. Best effort. */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.config;
    try {
      const lease = await this.config.client.get<Lease>(coreResources.leases, name, { namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      const nowMs = this.clock.now();
      await this.config.client.update<Lease>(coreResources.leases, {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: formatMicroTime(nowMs),
        },
      });
      this.observedHolder = '';
      this.logger.info('lease released');
    } catch (err) {
      this.logger.warn({ err }, 'could not release lease; standbys take over when it expires');
    }
  }

  /** Remembers when the lease record last changed, by this replica's clock. */
  private observe(lease: Lease, nowMs: number): void {
    const resourceVersion = lease.metadata?.resourceVersion;
    if (resourceVersion !== this.observedResourceVersion) {
      this.observedResourceVersion = resourceVersion;
      this.observedAtMs = nowMs;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      if (holder) {
        this.logger.info({ holder }, 'new leader observed');
        this.config.onNewLeader?.(holder);
      }
    }
  }
}

/**
 * `metav1.MicroTime` text: RFC 3339 with exactly six fractional digits. The API server parses
 * MicroTime with a fixed layout, so JavaScript's three-digit milliseconds would be rejected.
 */
export function formatMicroTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
