import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { MetricFamily } from '../../src/metrics/prometheus-text.js';
import { backoffDelay, type BackoffOptions } from '../../src/runtime/backoff.js';
import { realClock, sleep, type Clock } from '../../src/runtime/clock.js';
import { hugepageAdjustment, limitsBelow, type ContainerHugepageLimit, type NriContainerTarget } from './hugepage-adjustment.js';
import type { CreateContainerRequest, CreateContainerResponse, PodSandbox, SynchronizeRequest } from './nri-api.js';
import { connectUnixSocket, openPluginSession, type PluginHandlers, type RuntimeInfo } from './plugin-session.js';

/** Which hugetlb limits a container must get. */
export interface HugepageLimitSource {
  /** The limits to set; empty leaves the container as kubelet asked for it. Answer within the runtime's 2 s. */
  hugepageLimits(target: NriContainerTarget): ContainerHugepageLimit[] | Promise<ContainerHugepageLimit[]>;
}

/** Options of an {@link NriPlugin}. */
export interface NriPluginOptions {
  /** The runtime's NRI socket, e.g. `/var/run/nri/nri.sock`. */
  socketPath: string;
  source: HugepageLimitSource;
  logger: Logger;
  /** Default `nfv-node-agent`. */
  name?: string;
  /** Two digits, the order among plugins; default `50`. */
  index?: string;
  /** Registration through Synchronize; default 10000 ms (the runtime allows 5 s up to Configure). */
  registrationTimeoutMs?: number;
  /** Delays between connection attempts; default 0.5 s doubling to 30 s, 20% jitter. */
  backoff?: BackoffOptions;
  clock?: Clock;
  /** Opens the socket; default a unix socket connection. Tests wrap it to cut the connection. */
  dial?: (socketPath: string) => Promise<Socket>;
}

/** Where the plugin stands, for logs, /readyz and tests. */
export interface NriPluginStatus {
  registered: boolean;
  /** Successful registrations since start: more than one means it re-registered. */
  registrations: number;
  runtime?: RuntimeInfo;
  /** Why the last connection attempt failed or the last connection ended. */
  lastError?: string;
}

const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000, jitter: 0.2 };

/**
 * The node agent's NRI plugin: it sets the hugetlb limit of each container the
 * {@link HugepageLimitSource} names, in CreateContainer, before the runtime creates it. kubelet
 * gives every container limit 0 for the page sizes it does not request natively, and VNF pods
 * request their pages from the agent's device plugin instead.
 *
 * It connects to the runtime's socket and registers, and connects again, with backoff, whenever
 * the connection ends (runtime restarted or not there yet). While it is not registered, containers
 * are created with kubelet's limits: that is logged as an error, counted, and reported by
 * {@link status}.
 */
export class NriPlugin {
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  private running?: Promise<void>;
  private readonly current: NriPluginStatus = { registered: false, registrations: 0 };
  private readonly counters = { adjusted: 0, connectionFailures: 0, belowAllocation: 0 };

  constructor(private readonly options: NriPluginOptions) {
    this.clock = options.clock ?? realClock;
  }

  /** Starts connecting; it keeps at it until {@link stop}. */
  start(): void {
    this.running ??= this.run();
  }

  /** Closes the connection and stops reconnecting. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  status(): NriPluginStatus {
    return { ...this.current };
  }

  /** The families for a MetricsRegistry collector. */
  families(): MetricFamily[] {
    const labels = { socket: this.options.socketPath };
    return [
      { name: 'nfv_agent_nri_registered', help: 'Whether the NRI plugin is registered with the container runtime (1) or not (0).', type: 'gauge', samples: [{ labels, value: this.current.registered ? 1 : 0 }] },
      { name: 'nfv_agent_nri_registrations_total', help: 'Registrations of the NRI plugin with the container runtime.', type: 'counter', samples: [{ labels, value: this.current.registrations }] },
      { name: 'nfv_agent_nri_connection_failures_total', help: 'NRI connection attempts that failed and connections that ended.', type: 'counter', samples: [{ labels, value: this.counters.connectionFailures }] },
      { name: 'nfv_agent_nri_adjusted_containers_total', help: 'Containers whose hugetlb limits the NRI plugin set at creation.', type: 'counter', samples: [{ labels, value: this.counters.adjusted }] },
      {
        name: 'nfv_agent_nri_containers_below_allocation_total',
        help: 'Running containers found at (re)registration with a hugetlb limit below their allocation (created while the plugin was not registered).',
        type: 'counter',
        samples: [{ labels, value: this.counters.belowAllocation }],
      },
    ];
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    let attempt = 0;
    let lastLogged: string | undefined;
    while (!this.abort.signal.aborted) {
      try {
        const session = await openPluginSession({
          socketPath: this.options.socketPath,
          name: this.options.name ?? 'nfv-node-agent',
          index: this.options.index ?? '50',
          handlers: this.handlers(),
          logger,
          clock: this.clock,
          registrationTimeoutMs: this.options.registrationTimeoutMs ?? 10_000,
          dial: this.options.dial ?? connectUnixSocket,
          signal: this.abort.signal,
        });
        Object.assign(this.current, { registered: true, registrations: this.current.registrations + 1, runtime: session.runtime, lastError: undefined });
        logger.info({ socket: this.options.socketPath, runtime: session.runtime }, 'NRI plugin registered: VNF containers get their hugetlb limits at creation');
        attempt = 0;
        lastLogged = undefined;
        const err = await session.closed;
        this.current.registered = false;
        if (this.abort.signal.aborted) break;
        this.failed(`the runtime closed the NRI connection${err ? `: ${err.message}` : ''}`);
        logger.error({ socket: this.options.socketPath }, `${this.current.lastError}; reconnecting. Until then VNF containers are created with kubelet's hugetlb limit (0)`);
      } catch (err) {
        if (this.abort.signal.aborted) break;
        this.failed((err as Error).message);
        // The same failure every few seconds says nothing new: logged once, counted always.
        if (this.current.lastError !== lastLogged) {
          logger.error({ socket: this.options.socketPath, err: this.current.lastError }, "cannot register the NRI plugin with the container runtime; retrying. Until then VNF containers are created with kubelet's hugetlb limit (0)");
          lastLogged = this.current.lastError;
        }
      }
      await sleep(this.clock, backoffDelay(attempt++, this.options.backoff ?? DEFAULT_BACKOFF), this.abort.signal);
    }
  }

  private failed(message: string): void {
    this.counters.connectionFailures++;
    this.current.lastError = message;
  }

  private handlers(): PluginHandlers {
    return {
      createContainer: (request) => this.createContainer(request),
      synchronize: (request) => this.synchronize(request),
    };
  }

  private async createContainer({ pod, container }: CreateContainerRequest): Promise<CreateContainerResponse> {
    if (!pod || !container) return {};
    const limits = await this.limitsFor(targetOf(pod, container.name));
    const adjust = hugepageAdjustment(limits);
    if (!adjust) return {};
    this.counters.adjusted++;
    this.options.logger.info({ pod: `${pod.namespace}/${pod.name}`, container: container.name, limits }, 'NRI: set the container\'s hugetlb limits');
    return { adjust };
  }

  /** Finds containers created while the plugin was away: their limit stays until they restart. */
  private async synchronize(request: SynchronizeRequest): Promise<void> {
    const pods = new Map(request.pods.map((pod) => [pod.id, pod]));
    for (const container of request.containers) {
      const pod = pods.get(container.pod_sandbox_id);
      if (!pod) continue;
      const below = limitsBelow(await this.limitsFor(targetOf(pod, container.name)), container.linux?.resources?.hugepage_limits ?? []);
      if (below.length === 0) continue;
      this.counters.belowAllocation++;
      this.options.logger.error(
        { pod: `${pod.namespace}/${pod.name}`, container: container.name, limits: below },
        'NRI: a container was created while the plugin was not registered and has a hugetlb limit below its allocation; it gets the right one when it restarts (runc update does not change hugetlb limits)',
      );
    }
  }

  /** The source's answer; a failing source leaves the container alone rather than fail its creation. */
  private async limitsFor(target: NriContainerTarget): Promise<ContainerHugepageLimit[]> {
    try {
      return await this.options.source.hugepageLimits(target);
    } catch (err) {
      this.options.logger.error({ err, pod: `${target.namespace}/${target.podName}`, container: target.containerName }, 'NRI: could not decide the container\'s hugetlb limits; leaving it as kubelet asked');
      return [];
    }
  }
}

function targetOf(pod: PodSandbox, containerName: string): NriContainerTarget {
  return { namespace: pod.namespace, podName: pod.name, podUid: pod.uid, podLabels: pod.labels, containerName };
}
