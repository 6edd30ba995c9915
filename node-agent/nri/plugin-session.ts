/**
 * One connection of an NRI plugin to the runtime, from connect to close, as pkg/stub/stub.go
 * (nri v0.12.3) runs it: connect to the runtime's socket, multiplex it, serve the Plugin service
 * on one connection and call Runtime.RegisterPlugin on the other; the runtime then calls
 * Configure (the plugin answers with the events it wants), Synchronize (every pod and container
 * it has) and, from then on, the subscribed events, until Shutdown or the socket closes.
 */
import { createConnection, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from '../../src/runtime/clock.js';
import { Multiplexer, PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN } from './mux.js';
import {
  eventMask,
  NRI_API_VERSION,
  nriMethods,
  NriEvent,
  PLUGIN_SERVICE,
  RUNTIME_SERVICE,
  type CreateContainerRequest,
  type CreateContainerResponse,
  type MethodCodecs,
  type SynchronizeRequest,
} from './nri-api.js';
import { TtrpcClient, TtrpcServer, type UnaryHandler } from './ttrpc-endpoint.js';

/** What the plugin does with the runtime's requests. */
export interface PluginHandlers {
  /** Called with every batch of the runtime's pods and containers, at (re)registration. */
  synchronize(request: SynchronizeRequest): Promise<void>;
  createContainer(request: CreateContainerRequest): Promise<CreateContainerResponse>;
}

/** How to connect. */
export interface PluginSessionOptions {
  socketPath: string;
  /** Plugin name: [a-zA-Z0-9_.+-]+. */
  name: string;
  /** Two digits: plugins are called in ascending index order. */
  index: string;
  handlers: PluginHandlers;
  logger: Logger;
  clock: Clock;
  /** How long registration may take, through the end of Synchronize. */
  registrationTimeoutMs: number;
  /** Opens the socket. */
  dial(socketPath: string): Promise<Socket>;
  /** Closes the connection, during registration or after. */
  signal: AbortSignal;
}

/** The events the plugin subscribes to: only container creation. */
export const SUBSCRIBED_EVENTS = eventMask([NriEvent.CREATE_CONTAINER]);

/** Runtime and NRI version, as Configure reported them. */
export interface RuntimeInfo {
  name: string;
  version: string;
  nriVersion: string;
}

/** A registered connection. */
export interface PluginSession {
  runtime: RuntimeInfo;
  /** Resolves when the connection ends (the options' signal ends it too): with the error, or undefined for an orderly close. */
  closed: Promise<Error | undefined>;
}

/** Connects and registers; resolves once the runtime has synchronized the plugin. */
export async function openPluginSession(options: PluginSessionOptions): Promise<PluginSession> {
  const socket = await options.dial(options.socketPath);
  const mux = new Multiplexer(socket);
  const closed = new Promise<Error | undefined>((resolve) => mux.once('close', resolve));
  const closeOnAbort = () => mux.close();
  options.signal.addEventListener('abort', closeOnAbort, { once: true });
  void closed.then(() => options.signal.removeEventListener('abort', closeOnAbort));
  if (options.signal.aborted) mux.close();
  let runtime: RuntimeInfo | undefined;
  let synchronized = (): void => undefined;
  const registered = new Promise<void>((resolve) => (synchronized = resolve));
  const protocolError = (err: Error) => {
    options.logger.error({ err }, 'malformed message from the container runtime; closing the NRI connection');
    mux.close();
  };

  const handlers = new Map<string, UnaryHandler>([
    serve(nriMethods.configure, 'Configure', (request) => {
      runtime = { name: request.runtime_name, version: request.runtime_version, nriVersion: request.NRI_version };
      options.logger.info({ runtime }, 'NRI: configured by the container runtime');
      return { events: SUBSCRIBED_EVENTS };
    }),
    serve(nriMethods.synchronize, 'Synchronize', async (request) => {
      await options.handlers.synchronize(request);
      // The runtime adds the plugin once the last batch is answered.
      if (!request.more) synchronized();
      return { update: [], more: request.more };
    }),
    serve(nriMethods.createContainer, 'CreateContainer', (request) => options.handlers.createContainer(request)),
    serve(nriMethods.shutdown, 'Shutdown', () => {
      options.logger.info('NRI: the container runtime is shutting down');
      return {};
    }),
  ]);
  new TtrpcServer(mux.open(PLUGIN_SERVICE_CONN), handlers, protocolError);
  const client = new TtrpcClient(mux.open(RUNTIME_SERVICE_CONN), options.clock, protocolError);
  void closed.then(() => client.fail(new Error('the NRI connection closed')));

  try {
    const timeoutMs = options.registrationTimeoutMs;
    const request = nriMethods.registerPlugin.request.encode({ plugin_name: options.name, plugin_idx: options.index, NRI_version: NRI_API_VERSION });
    await client.call(RUNTIME_SERVICE, 'RegisterPlugin', request, timeoutMs);
    await new Promise<void>((resolve, reject) => {
      const timer = options.clock.setTimer(() => reject(new Error(`the runtime did not configure and synchronize the plugin within ${timeoutMs} ms`)), timeoutMs);
      void registered.then(() => {
        timer.cancel();
        resolve();
      });
      void closed.then((err) => {
        timer.cancel();
        reject(err ?? new Error('the runtime closed the connection during registration'));
      });
    });
  } catch (err) {
    mux.close();
    throw err;
  }
  return { runtime: runtime ?? { name: 'unknown', version: 'unknown', nriVersion: 'unknown' }, closed };
}

function serve<Req, Res>(codecs: MethodCodecs<Req, Res>, method: string, handle: (request: Req) => Res | Promise<Res>): [string, UnaryHandler] {
  return [`${PLUGIN_SERVICE}/${method}`, async (payload) => codecs.response.encode(await handle(codecs.request.decode(payload)))];
}

/** Connects to a unix socket. */
export function connectUnixSocket(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
