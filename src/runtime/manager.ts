import type { Logger } from 'pino';
import { realClock, sleep, type Clock } from './clock.js';
import type { Controller } from './controller.js';
import type { KubeObject } from './kube-object.js';
import type { Informer } from './informer.js';
import { LeaderElector, type LeaderElectionOptions } from './leader-election.js';
import type { ControllerMetricsSnapshot } from './reconcile-metrics.js';

/** Where shutdown signals come from; `process` in production, an EventEmitter in tests. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  off(signal: NodeJS.Signals, listener: () => void): unknown;
}

/** Why {@link Manager.run} returned. `leadershipLost` should end the process with a non-zero code. */
export type ManagerExitReason = 'signal' | 'stopped' | 'leadershipLost';

/** Options of a {@link Manager}. */
export interface ManagerOptions {
  logger: Logger;
  /**
   * Lease election; callbacks and logger are the manager's. Default: none, this replica always
   * runs its controllers (single replica, tests).
   */
  leaderElection?: Omit<LeaderElectionOptions, 'onStartedLeading' | 'onStoppedLeading' | 'logger' | 'clock'>;
  /** Default: {@link realClock}. */
  clock?: Clock;
  /** Signals that start a graceful shutdown. Default SIGTERM and SIGINT. */
  shutdownSignals?: NodeJS.Signals[];
  /** Default: `process`. */
  signalSource?: SignalSource;
  /**
   * How long reconciles in flight may take to finish after a shutdown signal before they are
   * aborted. Keep it under the pod's terminationGracePeriodSeconds. Default 20000.
   */
  gracefulShutdownTimeoutMs?: number;
  /** Called on a second shutdown signal, to exit without waiting. Default `process.exit(1)`. */
  forceExit?: () => void;
}

/**
 * Runs informers and controllers while this replica leads, like controller-runtime's manager.
 *
 * - Graceful shutdown (signal or {@link stop}): controllers stop taking work and finish what is in
 *   flight, informers stop, then the lease is released so a standby takes over at once.
 * - Leadership lost: controllers are stopped at once, aborting reconciles in flight, because a
 *   replica that is no longer leader must not keep writing; {@link run} resolves `leadershipLost`.
 */
export class Manager {
  private readonly informers: Informer<KubeObject>[] = [];
  private readonly controllers: Controller[] = [];
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly signals: NodeJS.Signals[];
  private readonly signalSource: SignalSource;
  private readonly gracefulShutdownTimeoutMs: number;
  private readonly forceExit: () => void;
  private readonly elector?: LeaderElector;
  private workloadsStarted = false;
  private exitReason?: ManagerExitReason;
  private stopping?: Promise<void>;
  private resolveExit!: (reason: ManagerExitReason) => void;
  private readonly exited: Promise<ManagerExitReason>;
  private readonly onSignal = (): void => this.handleSignal();

  constructor(options: ManagerOptions) {
    this.logger = options.logger.child({ component: 'manager' });
    this.clock = options.clock ?? realClock;
    this.signals = options.shutdownSignals ?? ['SIGTERM', 'SIGINT'];
    this.signalSource = options.signalSource ?? process;
    this.gracefulShutdownTimeoutMs = options.gracefulShutdownTimeoutMs ?? 20_000;
    this.forceExit = options.forceExit ?? (() => process.exit(1));
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
    if (options.leaderElection) {
      this.elector = new LeaderElector({
        ...options.leaderElection,
        logger: options.logger,
        clock: this.clock,
        onStartedLeading: () => this.startWorkloads(),
        onStoppedLeading: () => this.onStoppedLeading(),
      });
    }
  }

  /** Informers to start when leading. Register every informer your controllers use. */
  addInformer(...informers: Informer<KubeObject>[]): this {
    this.informers.push(...informers);
    return this;
  }

  /** Controllers to start when leading. */
  addController(...controllers: Controller[]): this {
    this.controllers.push(...controllers);
    return this;
  }

  /** Whether controllers are running on this replica. */
  isRunningWorkloads(): boolean {
    return this.workloadsStarted && this.exitReason === undefined;
  }

  /** Metrics of every controller. */
  metrics(): ControllerMetricsSnapshot[] {
    return this.controllers.map((controller) => controller.metrics());
  }

  /**
   * Installs signal handlers, campaigns for leadership (if configured) and runs until shut down.
   * Call once.
   */
  run(): Promise<ManagerExitReason> {
    for (const signal of this.signals) this.signalSource.on(signal, this.onSignal);
    if (this.elector) {
      this.logger.info('waiting for leadership');
      void this.elector.run();
    } else {
      this.startWorkloads();
    }
    return this.exited;
  }

  /** Graceful shutdown, as on SIGTERM; resolves once everything is stopped and the lease released. */
  stop(): Promise<void> {
    return this.shutDown('stopped');
  }

  private startWorkloads(): void {
    if (this.exitReason !== undefined || this.workloadsStarted) return;
    this.workloadsStarted = true;
    this.logger.info({ informers: this.informers.length, controllers: this.controllers.length }, 'starting workloads');
    for (const informer of this.informers) informer.start();
    for (const controller of this.controllers) {
      controller.start().catch((err: unknown) => {
        this.logger.error({ err, controller: controller.name }, 'controller failed to start');
      });
    }
  }

  private handleSignal(): void {
    if (this.stopping) {
      this.logger.error('second shutdown signal, exiting at once');
      this.forceExit();
      return;
    }
    this.logger.info('shutdown signal received');
    void this.shutDown('signal');
  }

  private shutDown(reason: ManagerExitReason): Promise<void> {
    this.stopping ??= this.gracefulShutdown(reason);
    return this.stopping;
  }

  private async gracefulShutdown(reason: ManagerExitReason): Promise<void> {
    this.exitReason = reason;
    const drained = Promise.all(this.controllers.map((controller) => controller.stop()));
    const timeout = new AbortController();
    const timedOut = sleep(this.clock, this.gracefulShutdownTimeoutMs, timeout.signal);
    const finishedInTime = await Promise.race([drained.then(() => true), timedOut.then(() => false)]);
    timeout.abort();
    if (!finishedInTime) {
      this.logger.warn(
        { timeoutMs: this.gracefulShutdownTimeoutMs },
        'reconciles still running at shutdown timeout, aborting them',
      );
      await Promise.all(this.controllers.map((controller) => controller.stop({ abortInFlight: true })));
    }
    await Promise.all(this.informers.map((informer) => informer.stop()));
    await this.elector?.stop();
    this.finish(reason);
  }

  private onStoppedLeading(): void {
    // A graceful shutdown releases the lease itself and is already stopping everything.
    if (this.stopping) return;
    this.exitReason = 'leadershipLost';
    this.logger.error('leadership lost, stopping controllers at once');
    this.stopping = (async () => {
      await Promise.all(this.controllers.map((controller) => controller.stop({ abortInFlight: true })));
      await Promise.all(this.informers.map((informer) => informer.stop()));
      this.finish('leadershipLost');
    })();
  }

  private finish(reason: ManagerExitReason): void {
    for (const signal of this.signals) this.signalSource.off(signal, this.onSignal);
    this.logger.info({ reason }, 'manager stopped');
    this.resolveExit(reason);
  }
}
