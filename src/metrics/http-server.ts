import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { PROMETHEUS_TEXT_CONTENT_TYPE, type MetricsRegistry } from './prometheus-text.js';

/** Whether the process should get traffic, and why, for `/readyz`. */
export interface ReadinessReport {
  ready: boolean;
  /** One line for whoever reads the probe's output. */
  message: string;
}

/** Decides readiness now; called on every `/readyz`. */
export type ReadinessCheck = () => ReadinessReport;

/** Where to listen. */
export interface ListenAddress {
  /** Absent: every interface. */
  host?: string;
  /** 0 picks a free port (tests). */
  port: number;
}

/**
 * Parses a listen address as Go servers spell it: `:8080` (every interface), `127.0.0.1:9090`,
 * `[::1]:9090`.
 *
 * @throws RangeError naming the text when it is not `[host]:port` with a port in 0-65535.
 */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    throw new RangeError(`listen address "${text}" is not [host]:port, e.g. ":8080", "127.0.0.1:8080" or "[::1]:8080"`);
  }
  const host = match[1] ?? match[2];
  return host ? { host, port } : { port };
}

/** Options of a {@link MetricsServer}. */
export interface MetricsServerOptions {
  /** `[host]:port` as {@link parseListenAddress} reads it. Default `:8080`. */
  address?: string;
  /** Rendered on every `GET /metrics`. */
  registry: MetricsRegistry;
  /** Answers `GET /readyz`. */
  readiness: ReadinessCheck;
  logger: Logger;
}

/**
 * The operator's HTTP endpoint for Prometheus and the kubelet:
 *
 * - `/metrics`: the registry in Prometheus text format 0.0.4;
 * - `/healthz`: 200 while the process can answer at all (liveness);
 * - `/readyz`: 200 or 503 from the readiness check (readiness).
 *
 * Only GET and HEAD are served; query strings are ignored.
 */
export class MetricsServer {
  private readonly address: ListenAddress;
  private readonly server: Server;
  private readonly logger: Logger;

  /** @throws RangeError if `address` cannot be parsed. */
  constructor(private readonly options: MetricsServerOptions) {
    this.address = parseListenAddress(options.address ?? ':8080');
    this.logger = options.logger.child({ component: 'metrics-server' });
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.logger.error({ err, path: req.url }, 'metrics request failed');
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end();
      });
    });
  }

  /**
   * Listens and resolves with the bound address and its base URL (the real port when 0 was asked).
   *
   * @throws Error naming the address when it cannot be bound (in use, not local, no permission).
   */
  start(): Promise<{ host: string; port: number; url: string }> {
    const { host, port } = this.address;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(new Error(`metrics server cannot listen on ${host ?? ''}:${port}: ${err.code ?? err.message}`, { cause: err }));
      };
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.logger.error({ err }, 'metrics server error'));
        const bound = this.server.address() as AddressInfo;
        const urlHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
        this.logger.info({ address: bound.address, port: bound.port }, 'metrics server listening');
        resolve({ host: bound.address, port: bound.port, url: `http://${urlHost}:${bound.port}` });
      });
    });
  }

  /** Stops listening and closes open connections, scrapes in flight included. */
  stop(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://metrics.invalid').pathname;
    const known = path === '/metrics' || path === '/healthz' || path === '/readyz';
    if (!known) return send(res, 404, `no such endpoint ${path}; try /metrics, /healthz or /readyz\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, `${req.method} is not allowed on ${path}\n`);
    }
    if (path === '/healthz') return send(res, 200, 'ok\n');
    if (path === '/readyz') {
      const { ready, message } = this.options.readiness();
      return send(res, ready ? 200 : 503, `${ready ? 'ok' : 'not ready'}: ${message}\n`);
    }
    const text = await this.options.registry.render();
    send(res, 200, text, PROMETHEUS_TEXT_CONTENT_TYPE);
  }
}

/** Node leaves the body out of answers to HEAD by itself. */
function send(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
