import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ApiError, isGone } from './api-error.js';
import { splitLines } from './json-lines.js';
import {
  apiVersionOf,
  resourcePath,
  type KubeObject,
  type ResourceRef,
  type StatusBody,
} from './kube-object.js';

/** Request kinds counted by {@link KubeClient.requestCounts}. `apply` is a server-side-apply PATCH. */
export type RequestVerb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'apply' | 'delete';

/** HTTP requests sent so far, by verb (retries after a 401 count too). */
export type RequestCounts = Record<RequestVerb, number>;

/** Settings of a {@link KubeClient}. */
export interface KubeClientOptions {
  /** Debug lines per request go here. Default: none. */
  logger?: Logger;
  /** Socket idle timeout of every request except watches, in ms. Default 30000. */
  requestTimeoutMs?: number;
  /** `User-Agent` header. Default `nfv-operator`. */
  userAgent?: string;
  /**
   * How long TLS material and auth headers from the kubeconfig are reused, in ms. Default 60000.
   * A 401 always refreshes them and retries once, so rotated tokens are picked up at once.
   */
  credentialCacheMs?: number;
}

/** Options every request takes. */
export interface RequestOptions {
  /** Aborts the request (and, for watches, ends the stream quietly). */
  signal?: AbortSignal;
}

/** Addressing of one object. */
export interface ObjectRequestOptions extends RequestOptions {
  /** Namespace of the object; required for namespaced resources. */
  namespace?: string;
}

/** Filters shared by list and watch. */
export interface SelectorOptions {
  /** Namespace to list; omitted for a namespaced resource lists all namespaces. */
  namespace?: string;
  /** e.g. `app=vnf,tier!=test`. */
  labelSelector?: string;
  /** e.g. `spec.nodeName=worker-1`. */
  fieldSelector?: string;
}

/** Options of {@link KubeClient.list} and {@link KubeClient.listPage}. */
export interface ListOptions extends RequestOptions, SelectorOptions {
  /** Page size. `list` follows continue tokens until done; `listPage` returns one page. Default: no paging. */
  limit?: number;
  /** Continue token from a previous page (`listPage` only). */
  continue?: string;
  /** `resourceVersion` query parameter; `'0'` allows a (possibly stale) watch-cache read. Default: a quorum read. */
  resourceVersion?: string;
}

/** One page of a list. */
export interface ListPage<T> {
  items: T[];
  /** resourceVersion of the list: start a watch from here to see every later change. */
  resourceVersion: string;
  /** Token for the next page; absent on the last page. */
  continue?: string;
}

/** A whole list. */
export interface ListResult<T> {
  items: T[];
  /** resourceVersion of the list: start a watch from here to see every later change. */
  resourceVersion: string;
}

/** Options of {@link KubeClient.watch}. */
export interface WatchOptions extends RequestOptions, SelectorOptions {
  /** Start after this version (from a list or the last event). Default: the server's current state as ADDED events. */
  resourceVersion?: string;
  /** Ask for BOOKMARK events, which keep the resourceVersion fresh on quiet resources. Default true. */
  allowWatchBookmarks?: boolean;
  /** Server-side timeout after which the stream ends normally. Default: the server's (about 30-60 min). */
  timeoutSeconds?: number;
}

/** One watch event. ERROR carries a Status (code 410 means the resourceVersion is too old: relist). */
export type WatchEvent<T> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'; object: T }
  | { type: 'ERROR'; object: StatusBody };

/** Options of writes. */
export interface WriteOptions extends RequestOptions {
  /** Field manager recorded in managedFields. Default: the server's (`unknown` style user agent). */
  fieldManager?: string;
  /** Subresource to write, e.g. `'status'`. Default: the main resource. */
  subresource?: string;
}

/** Options of {@link KubeClient.create}. */
export interface CreateOptions extends WriteOptions {
  /** Namespace, when the object does not carry `metadata.namespace`. */
  namespace?: string;
}

/** Options of merge and JSON patches. */
export interface PatchOptions extends WriteOptions {
  /** Namespace of the object; required for namespaced resources. */
  namespace?: string;
}

/** Options of server-side apply. */
export interface ApplyOptions extends RequestOptions {
  /** Field manager that will own every field in the applied object. Required. */
  fieldManager: string;
  /**
   * Take ownership of fields other managers hold instead of failing with a Conflict.
   * Default true: a controller is the authority on what it applies.
   */
  force?: boolean;
  /** Subresource to apply, e.g. `'status'`. Default: the main resource. */
  subresource?: string;
}

/** One RFC 6902 JSON patch operation. */
export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

/** Options of {@link KubeClient.delete}. */
export interface DeleteOptions extends ObjectRequestOptions {
  /** Delete only if the object still has this uid and/or resourceVersion (409 Conflict otherwise). */
  preconditions?: { uid?: string; resourceVersion?: string };
  /** What happens to dependents. Default: the resource's own default (Background for most). */
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  /** Grace period; 0 deletes pods at once. Default: the object's own. */
  gracePeriodSeconds?: number;
}

interface ConnectionSettings {
  options: https.RequestOptions;
  fetchedAtMs: number;
}

/** One API request, before credentials are added. */
interface ApiRequest {
  verb: RequestVerb;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path under the server URL, without query. */
  path: string;
  query?: URLSearchParams;
  body?: string;
  contentType?: string;
  signal?: AbortSignal;
}

const jsonContentType = 'application/json';

/**
 * A thin JSON REST client for any resource, built from a `KubeConfig` (client certificates, bearer
 * tokens, exec plugins and CA bundles all come from `applyToHTTPSOptions`). Requests share one
 * keep-alive agent, so steady-state traffic reuses TLS connections.
 *
 * Failed requests reject with {@link ApiError}; network failures with an `Error` naming the request
 * (its `cause` is the socket error); aborted requests with the `AbortError` itself.
 */
export class KubeClient {
  private readonly serverUrl: URL;
  private readonly pathPrefix: string;
  private readonly agent: http.Agent;
  private readonly usesProxy: boolean;
  private readonly counts: RequestCounts = {
    get: 0,
    list: 0,
    watch: 0,
    create: 0,
    update: 0,
    patch: 0,
    apply: 0,
    delete: 0,
  };
  private connection?: ConnectionSettings;
  private readonly requestTimeoutMs: number;
  private readonly userAgent: string;
  private readonly credentialCacheMs: number;
  private readonly logger?: Logger;

  /** @throws if the kubeconfig has no current cluster. */
  constructor(
    private readonly kubeConfig: KubeConfig,
    options: KubeClientOptions = {},
  ) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster: set current-context or load a config first');
    this.serverUrl = new URL(cluster.server);
    // Servers behind a proxy path (https://host/k8s/clusters/x) keep that prefix on every request.
    this.pathPrefix = this.serverUrl.pathname.replace(/\/+$/, '');
    this.usesProxy = Boolean(cluster.proxyUrl);
    this.agent =
      this.serverUrl.protocol === 'http:' ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true });
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.userAgent = options.userAgent ?? 'nfv-operator';
    this.credentialCacheMs = options.credentialCacheMs ?? 60_000;
    this.logger = options.logger;
  }

  /** A snapshot of requests sent so far, by verb. */
  requestCounts(): RequestCounts {
    return { ...this.counts };
  }

  /** Closes idle keep-alive sockets. Call when done with the client so the process can exit. */
  close(): void {
    this.agent.destroy();
  }

  /** GETs one object. */
  async get<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    name: string,
    options: ObjectRequestOptions = {},
  ): Promise<T> {
    const path = resourcePath(ref, requireNamespace(ref, options.namespace, name), name);
    return this.requestJson<T>({ verb: 'get', method: 'GET', path, signal: options.signal });
  }

  /** Lists one page. Items get `apiVersion` and `kind` filled in (the server omits them for built-in kinds). */
  async listPage<T extends KubeObject = KubeObject>(ref: ResourceRef, options: ListOptions = {}): Promise<ListPage<T>> {
    const query = selectorQuery(options);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.continue) query.set('continue', options.continue);
    if (options.resourceVersion !== undefined) query.set('resourceVersion', options.resourceVersion);
    const body = await this.requestJson<{ items?: T[]; metadata?: { resourceVersion?: string; continue?: string } }>({
      verb: 'list',
      method: 'GET',
      path: resourcePath(ref, options.namespace),
      query,
      signal: options.signal,
    });
    const items = (body.items ?? []).map((item) => withTypeMeta(ref, item));
    const page: ListPage<T> = { items, resourceVersion: body.metadata?.resourceVersion ?? '' };
    if (body.metadata?.continue) page.continue = body.metadata.continue;
    return page;
  }

  /**
   * Lists everything, following continue tokens when `limit` sets a page size. If a continue token
   * expires mid-way (410, paging outlived etcd compaction) it falls back to one unpaged list, as
   * client-go's pager does.
   */
  async list<T extends KubeObject = KubeObject>(ref: ResourceRef, options: ListOptions = {}): Promise<ListResult<T>> {
    const items: T[] = [];
    let page = await this.listPage<T>(ref, { ...options, continue: undefined });
    const resourceVersion = page.resourceVersion;
    items.push(...page.items);
    while (page.continue) {
      try {
        page = await this.listPage<T>(ref, { ...options, continue: page.continue });
      } catch (err) {
        if (!isGone(err)) throw err;
        const full = await this.listPage<T>(ref, { ...options, limit: undefined, continue: undefined });
        return { items: full.items, resourceVersion: full.resourceVersion };
      }
      items.push(...page.items);
    }
    return { items, resourceVersion };
  }

  /**
   * Watches a collection as an async iterable of events, one per JSON line of the response.
   * The iterable ends when the server closes the stream (timeout) or `signal` aborts; it throws
   * {@link ApiError} if the server refuses the watch (410 when `resourceVersion` is too old).
   * Breaking out of the loop closes the connection.
   */
  async *watch<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    options: WatchOptions = {},
  ): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const query = selectorQuery(options);
    query.set('watch', 'true');
    if (options.allowWatchBookmarks ?? true) query.set('allowWatchBookmarks', 'true');
    if (options.resourceVersion !== undefined) query.set('resourceVersion', options.resourceVersion);
    if (options.timeoutSeconds !== undefined) query.set('timeoutSeconds', String(options.timeoutSeconds));
    let response: http.IncomingMessage | undefined;
    try {
      const path = resourcePath(ref, options.namespace);
      response = await this.send({ verb: 'watch', method: 'GET', path, query, signal: options.signal }, true);
      for await (const line of splitLines(response)) {
        const event = JSON.parse(line) as WatchEvent<T>;
        if (event.type !== 'ERROR' && event.type !== 'BOOKMARK') event.object = withTypeMeta(ref, event.object);
        yield event;
      }
    } catch (err) {
      if (options.signal?.aborted) return;
      throw err;
    } finally {
      response?.destroy();
    }
  }

  /** POSTs a new object. The namespace comes from `metadata.namespace`, else from options. */
  async create<T extends KubeObject>(ref: ResourceRef, obj: T, options: CreateOptions = {}): Promise<T> {
    const name = obj.metadata?.name;
    const namespace = requireNamespace(ref, obj.metadata?.namespace ?? options.namespace, name ?? '(generated name)');
    const path = resourcePath(ref, namespace, options.subresource ? name : undefined, options.subresource);
    const body = JSON.stringify(withTypeMeta(ref, obj));
    const query = writeQuery(options);
    return this.requestJson<T>({ verb: 'create', method: 'POST', path, query, body, signal: options.signal });
  }

  /**
   * PUTs a whole object. `metadata.resourceVersion` is required and acts as a precondition: if the
   * object changed since it was read the server answers 409 Conflict, so no update is ever lost.
   * Use {@link KubeClient.apply} for writes that should not depend on what was read.
   */
  async update<T extends KubeObject>(ref: ResourceRef, obj: T, options: WriteOptions = {}): Promise<T> {
    const name = requireName(obj);
    if (!obj.metadata?.resourceVersion) {
      throw new TypeError(
        `update of ${ref.kind} ${name}: metadata.resourceVersion is required (it is the precondition); use apply otherwise`,
      );
    }
    const path = resourcePath(ref, requireNamespace(ref, obj.metadata.namespace, name), name, options.subresource);
    const body = JSON.stringify(withTypeMeta(ref, obj));
    const query = writeQuery(options);
    return this.requestJson<T>({ verb: 'update', method: 'PUT', path, query, body, signal: options.signal });
  }

  /** PATCHes with an RFC 7386 JSON merge patch (`null` deletes a field; lists are replaced whole). */
  async mergePatch<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    name: string,
    patch: object,
    options: PatchOptions = {},
  ): Promise<T> {
    return this.patch<T>(ref, name, JSON.stringify(patch), 'application/merge-patch+json', options);
  }

  /** PATCHes with RFC 6902 operations; a `test` op makes it conditional (e.g. on resourceVersion). */
  async jsonPatch<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    name: string,
    operations: JsonPatchOperation[],
    options: PatchOptions = {},
  ): Promise<T> {
    return this.patch<T>(ref, name, JSON.stringify(operations), 'application/json-patch+json', options);
  }

  /**
   * Server-side apply: `obj` is the full intent of `fieldManager` for this object. Fields the
   * manager applied before and now leaves out are removed. `apiVersion` and `kind` are filled from
   * `ref` when missing. A `metadata.resourceVersion` in `obj` would make the apply conditional, so
   * leave it out unless that is wanted.
   */
  async apply<T extends KubeObject>(ref: ResourceRef, obj: T, options: ApplyOptions): Promise<T> {
    const name = requireName(obj);
    const path = resourcePath(ref, requireNamespace(ref, obj.metadata?.namespace, name), name, options.subresource);
    const query = new URLSearchParams({ fieldManager: options.fieldManager });
    if (options.force ?? true) query.set('force', 'true');
    return this.requestJson<T>({
      verb: 'apply',
      method: 'PATCH',
      path,
      query,
      body: JSON.stringify(withTypeMeta(ref, obj)),
      // JSON is YAML, and this content type is what makes the server treat the PATCH as an apply.
      contentType: 'application/apply-patch+yaml',
      signal: options.signal,
    });
  }

  /**
   * DELETEs an object.
   *
   * @returns the object as it is now (with `deletionTimestamp` when finalizers hold it), or
   * `undefined` when the server answered with a Status because the object is already gone.
   */
  async delete<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    name: string,
    options: DeleteOptions = {},
  ): Promise<T | undefined> {
    const path = resourcePath(ref, requireNamespace(ref, options.namespace, name), name);
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (options.preconditions) body.preconditions = options.preconditions;
    if (options.propagationPolicy) body.propagationPolicy = options.propagationPolicy;
    if (options.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = options.gracePeriodSeconds;
    const result = await this.requestJson<T | StatusBody>({
      verb: 'delete',
      method: 'DELETE',
      path,
      body: JSON.stringify(body),
      signal: options.signal,
    });
    return result.kind === 'Status' ? undefined : (result as T);
  }

  private patch<T>(ref: ResourceRef, name: string, body: string, contentType: string, options: PatchOptions): Promise<T> {
    const path = resourcePath(ref, requireNamespace(ref, options.namespace, name), name, options.subresource);
    const query = writeQuery(options);
    return this.requestJson<T>({ verb: 'patch', method: 'PATCH', path, query, body, contentType, signal: options.signal });
  }

  private async requestJson<T>(request: ApiRequest): Promise<T> {
    const response = await this.send(request, false);
    const text = await readBody(response, request);
    if (!text) return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new Error(`${request.method} ${request.path}: response is not JSON: ${text.slice(0, 200)}`, { cause: err });
    }
  }

  /** Sends one request and resolves with a 2xx response; other statuses reject with {@link ApiError}. */
  private async send(request: ApiRequest, streaming: boolean): Promise<http.IncomingMessage> {
    const search = request.query?.toString();
    const fullPath = this.pathPrefix + request.path + (search ? `?${search}` : '');
    let refreshed = false;
    let resent = false;
    for (;;) {
      const fromCache = !refreshed && !this.connectionExpired();
      const connection = await this.connectionOptions(refreshed);
      this.counts[request.verb]++;
      const startedMs = Date.now();
      let response: http.IncomingMessage;
      try {
        response = await this.dispatch(connection, request, fullPath, streaming);
      } catch (err) {
        // A pooled keep-alive socket the server closed while idle fails at once with ECONNRESET;
        // a GET is safe to send again on a fresh socket.
        if (request.method === 'GET' && !resent && socketErrorCode(err) === 'ECONNRESET') {
          resent = true;
          continue;
        }
        throw err;
      }
      const code = response.statusCode ?? 0;
      this.logger?.debug({ verb: request.verb, path: fullPath, code, ms: Date.now() - startedMs }, 'kube request');
      if (code >= 200 && code < 300) return response;
      const text = await readBody(response, request);
      // Tokens from exec plugins and projected service-account files rotate: one fresh try.
      if (code === 401 && fromCache) {
        refreshed = true;
        continue;
      }
      throw new ApiError(code, parseStatus(text), `${request.method} ${request.path}`);
    }
  }

  private dispatch(
    connection: https.RequestOptions,
    request: ApiRequest,
    fullPath: string,
    streaming: boolean,
  ): Promise<http.IncomingMessage> {
    const headers: http.OutgoingHttpHeaders = {
      ...(connection.headers as http.OutgoingHttpHeaders | undefined),
      Accept: jsonContentType,
      'User-Agent': this.userAgent,
    };
    if (request.body !== undefined) {
      headers['Content-Type'] = request.contentType ?? jsonContentType;
      headers['Content-Length'] = Buffer.byteLength(request.body);
    }
    const options: https.RequestOptions = {
      ...connection,
      protocol: this.serverUrl.protocol,
      hostname: this.serverUrl.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: this.serverUrl.port || undefined,
      method: request.method,
      path: fullPath,
      headers,
      signal: request.signal,
    };
    const transport = this.serverUrl.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const outgoing = transport.request(options, resolve);
      outgoing.on('error', (err) => reject(describeNetworkError(err, request)));
      // Watches are idle for minutes between events by design; only plain requests time out.
      if (!streaming) {
        outgoing.setTimeout(this.requestTimeoutMs, () => {
          outgoing.destroy(new Error(`no response within ${this.requestTimeoutMs}ms`));
        });
      }
      outgoing.end(request.body);
    });
  }

  private connectionExpired(): boolean {
    return !this.connection || Date.now() - this.connection.fetchedAtMs >= this.credentialCacheMs;
  }

  /**
   * TLS material and auth headers from the kubeconfig. The kubeconfig hands back an agent of its
   * own per call; it is replaced by the shared keep-alive agent (the TLS options travel with each
   * request, and Node pools sockets by them), except behind a proxy, whose agent does the tunnelling.
   */
  private async connectionOptions(forceRefresh: boolean): Promise<https.RequestOptions> {
    if (!forceRefresh && this.connection && !this.connectionExpired()) return this.connection.options;
    const options: https.RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(options);
    if (!this.usesProxy) options.agent = this.agent;
    this.connection = { options, fetchedAtMs: Date.now() };
    return options;
  }
}

function selectorQuery(options: SelectorOptions): URLSearchParams {
  const query = new URLSearchParams();
  if (options.labelSelector) query.set('labelSelector', options.labelSelector);
  if (options.fieldSelector) query.set('fieldSelector', options.fieldSelector);
  return query;
}

function writeQuery(options: WriteOptions): URLSearchParams {
  const query = new URLSearchParams();
  if (options.fieldManager) query.set('fieldManager', options.fieldManager);
  return query;
}

function withTypeMeta<T extends KubeObject>(ref: ResourceRef, obj: T): T {
  if (obj.apiVersion && obj.kind) return obj;
  return { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(ref), kind: obj.kind ?? ref.kind };
}

function requireName(obj: KubeObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new TypeError(`${obj.kind ?? 'object'} has no metadata.name`);
  return name;
}

function requireNamespace(ref: ResourceRef, namespace: string | undefined, name: string): string | undefined {
  if (ref.namespaced && !namespace) {
    throw new TypeError(`${ref.kind} ${name} is namespaced: pass a namespace (or set metadata.namespace)`);
  }
  return ref.namespaced ? namespace : undefined;
}

function parseStatus(text: string): StatusBody | undefined {
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as StatusBody;
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return { message: text.slice(0, 500) };
  }
}

async function readBody(response: http.IncomingMessage, request: ApiRequest): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of response) chunks.push(chunk as Buffer);
  } catch (err) {
    throw describeNetworkError(err as Error, request);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function socketErrorCode(err: unknown): string | undefined {
  const cause = err instanceof Error ? (err.cause as NodeJS.ErrnoException | undefined) : undefined;
  return cause?.code;
}

function describeNetworkError(err: Error, request: ApiRequest): Error {
  if (err.name === 'AbortError') return err;
  return new Error(`${request.method} ${request.path}: ${err.message}`, { cause: err });
}
