import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiError, isAlreadyExists, isConflict, isGone, isInvalid, isNotFound } from '../../../src/runtime/api-error.js';
import { KubeClient, type WatchEvent } from '../../../src/runtime/kube-client.js';
import { coreResources, type KubeObject, type ResourceRef } from '../../../src/runtime/kube-object.js';

const widgets: ResourceRef = { group: 'test.dev', version: 'v1', plural: 'widgets', kind: 'Widget', namespaced: true };

interface Recorded {
  socket: Socket;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Route = (req: Recorded, res: http.ServerResponse) => void;

/** An in-process HTTP server standing in for kube-apiserver; each test sets `route`. */
class FakeApiServer {
  readonly requests: Recorded[] = [];
  connections = 0;
  route: Route = (_req, res) => json(res, 200, {});
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded = { socket: req.socket, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      this.requests.push(recorded);
      this.route(recorded, res);
    });
  });

  constructor() {
    this.server.on('connection', () => this.connections++);
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

function json(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message };
}

function kubeConfig(server: string, token = 'secret-token'): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'test', server, skipTLSVerify: true }],
    users: [{ name: 'test', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
    currentContext: 'test',
  });
  return config;
}

describe('KubeClient', () => {
  let api: FakeApiServer;
  let client: KubeClient;
  let server: string;

  beforeEach(async () => {
    api = new FakeApiServer();
    server = await api.listen();
    client = new KubeClient(kubeConfig(server));
  });

  afterEach(async () => {
    client.close();
    await api.close();
  });

  it('GETs objects by path with the kubeconfig credentials, reusing one keep-alive connection', async () => {
    api.route = (req, res) => json(res, 200, { metadata: { name: req.url.split('/').pop() } });
    await client.get(widgets, 'w1', { namespace: 'ns' });
    await client.get(coreResources.nodes, 'node-1');
    await client.get(coreResources.pods, 'p', { namespace: 'kube-system' });
    expect(api.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET /apis/test.dev/v1/namespaces/ns/widgets/w1',
      'GET /api/v1/nodes/node-1',
      'GET /api/v1/namespaces/kube-system/pods/p',
    ]);
    expect(api.requests[0]?.headers).toMatchObject({
      authorization: 'Bearer secret-token',
      accept: 'application/json',
      'user-agent': 'nfv-operator',
    });
    expect(api.connections).toBe(1);
    expect(client.requestCounts()).toMatchObject({ get: 3, list: 0 });
  });

  it('refuses namespaced calls without a namespace', async () => {
    await expect(client.get(widgets, 'w1')).rejects.toThrow(/namespaced/);
    expect(api.requests).toHaveLength(0);
  });

  it('keeps a path prefix of the server URL', async () => {
    const prefixed = new KubeClient(kubeConfig(`${server}/k8s/clusters/c-1/`));
    await prefixed.get(coreResources.nodes, 'n');
    prefixed.close();
    expect(api.requests[0]?.url).toBe('/k8s/clusters/c-1/api/v1/nodes/n');
  });

  describe('list', () => {
    it('follows continue tokens, fills kind and apiVersion, and returns the list resourceVersion', async () => {
      api.route = (req, res) => {
        const url = new URL(req.url, 'http://x');
        const page = url.searchParams.get('continue') ?? 'first';
        const pages: Record<string, unknown> = {
          first: { metadata: { resourceVersion: '100', continue: 'second' }, items: [{ metadata: { name: 'a' } }] },
          second: { metadata: { resourceVersion: '100', continue: 'third' }, items: [{ metadata: { name: 'b' } }] },
          third: { metadata: { resourceVersion: '100' }, items: [{ metadata: { name: 'c' } }] },
        };
        json(res, 200, pages[page]);
      };
      const result = await client.list(coreResources.pods, {
        namespace: 'ns',
        labelSelector: 'app=vnf',
        fieldSelector: 'spec.nodeName=n1',
        limit: 1,
      });
      expect(result.resourceVersion).toBe('100');
      expect(result.items).toEqual(['a', 'b', 'c'].map((name) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name } })));
      expect(api.requests.map((r) => r.url)).toEqual([
        '/api/v1/namespaces/ns/pods?labelSelector=app%3Dvnf&fieldSelector=spec.nodeName%3Dn1&limit=1',
        '/api/v1/namespaces/ns/pods?labelSelector=app%3Dvnf&fieldSelector=spec.nodeName%3Dn1&limit=1&continue=second',
        '/api/v1/namespaces/ns/pods?labelSelector=app%3Dvnf&fieldSelector=spec.nodeName%3Dn1&limit=1&continue=third',
      ]);
      expect(client.requestCounts().list).toBe(3);
    });

    it('falls back to one unpaged list when a continue token expires', async () => {
      api.route = (req, res) => {
        if (req.url.includes('continue=')) return json(res, 410, status(410, 'Expired', 'continue token expired'));
        if (req.url.includes('limit=')) return json(res, 200, { metadata: { resourceVersion: '1', continue: 'next' }, items: [{ metadata: { name: 'a' } }] });
        json(res, 200, { metadata: { resourceVersion: '2' }, items: [{ metadata: { name: 'a' } }, { metadata: { name: 'b' } }] });
      };
      const result = await client.list(widgets, { limit: 1 });
      expect(result.resourceVersion).toBe('2');
      expect(result.items.map((i) => i.metadata?.name)).toEqual(['a', 'b']);
      expect(api.requests.at(-1)?.url).toBe('/apis/test.dev/v1/widgets');
    });

    it('lists all namespaces when no namespace is given', async () => {
      api.route = (_req, res) => json(res, 200, { metadata: { resourceVersion: '1' }, items: [] });
      await client.listPage(widgets);
      expect(api.requests[0]?.url).toBe('/apis/test.dev/v1/widgets');
    });
  });

  describe('errors', () => {
    it.each([
      { code: 404, reason: 'NotFound', check: isNotFound },
      { code: 409, reason: 'Conflict', check: isConflict },
      { code: 409, reason: 'AlreadyExists', check: isAlreadyExists },
      { code: 410, reason: 'Expired', check: isGone },
      { code: 422, reason: 'Invalid', check: isInvalid },
    ])('maps a $code $reason Status to ApiError', async ({ code, reason, check }) => {
      api.route = (_req, res) => json(res, code, status(code, reason, `widgets "w1" ${reason}`));
      const err = await client.get(widgets, 'w1', { namespace: 'ns' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect(err).toMatchObject({ code, reason });
      expect((err as Error).message).toBe(`GET /apis/test.dev/v1/namespaces/ns/widgets/w1: widgets "w1" ${reason}`);
      expect(check(err)).toBe(true);
      const others = [isNotFound, isConflict, isAlreadyExists, isGone, isInvalid].filter((c) => c !== check);
      expect(others.map((c) => c(err))).toEqual(others.map(() => false));
    });

    it('derives the reason from the status code when the body is not a Status', async () => {
      api.route = (_req, res) => {
        res.writeHead(503);
        res.end('upstream connect error');
      };
      const err = await client.get(coreResources.nodes, 'n').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 503, reason: 'ServiceUnavailable' });
      expect((err as Error).message).toContain('upstream connect error');
    });

    it('names the request on network errors', async () => {
      await api.close();
      const err = await client.get(coreResources.nodes, 'n').catch((e: unknown) => e);
      expect(err).not.toBeInstanceOf(ApiError);
      expect((err as Error).message).toMatch(/^GET \/api\/v1\/nodes\/n: /);
      api = new FakeApiServer();
      await api.listen();
    });

    it('sends a GET again once when a pooled connection was reset', async () => {
      let calls = 0;
      api.route = (req, res) => {
        if (calls++ === 0) {
          req.socket.destroy();
          return;
        }
        json(res, 200, { metadata: { name: 'n' } });
      };
      await expect(client.get(coreResources.nodes, 'n')).resolves.toMatchObject({ metadata: { name: 'n' } });
      expect(client.requestCounts().get).toBe(2);
      api.route = (req) => req.socket.destroy();
      await expect(client.mergePatch(coreResources.nodes, 'n', {})).rejects.toThrow(/PATCH \/api\/v1\/nodes\/n: socket hang up|ECONNRESET/);
      expect(client.requestCounts().patch).toBe(1);
    });

    it('refreshes cached credentials and retries once on 401', async () => {
      let calls = 0;
      api.route = (_req, res) => (calls++ === 1 ? json(res, 401, status(401, 'Unauthorized', 'expired token')) : json(res, 200, {}));
      await client.get(coreResources.nodes, 'n'); // fresh credentials
      await client.get(coreResources.nodes, 'n'); // cached: 401, refresh, retry
      expect(client.requestCounts().get).toBe(3);
    });
  });

  describe('writes', () => {
    beforeEach(() => {
      api.route = (req, res) => (req.method === 'DELETE' ? json(res, 200, status(200, '', '')) : json(res, 200, JSON.parse(req.body || '{}')));
    });

    it('create POSTs to the collection with apiVersion and kind filled', async () => {
      await client.create(widgets, { metadata: { name: 'w', namespace: 'ns' } }, { fieldManager: 'nfv-operator' });
      const req = api.requests[0];
      expect(`${req?.method} ${req?.url}`).toBe('POST /apis/test.dev/v1/namespaces/ns/widgets?fieldManager=nfv-operator');
      expect(req?.headers['content-type']).toBe('application/json');
      expect(JSON.parse(req?.body ?? '')).toEqual({ apiVersion: 'test.dev/v1', kind: 'Widget', metadata: { name: 'w', namespace: 'ns' } });
    });

    it('update PUTs with the resourceVersion precondition, also to the status subresource', async () => {
      const obj: KubeObject = { metadata: { name: 'w', namespace: 'ns', resourceVersion: '7' } };
      await client.update(widgets, obj);
      await client.update(widgets, obj, { subresource: 'status' });
      expect(api.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
        'PUT /apis/test.dev/v1/namespaces/ns/widgets/w',
        'PUT /apis/test.dev/v1/namespaces/ns/widgets/w/status',
      ]);
      expect(JSON.parse(api.requests[0]?.body ?? '').metadata.resourceVersion).toBe('7');
      await expect(client.update(widgets, { metadata: { name: 'w', namespace: 'ns' } })).rejects.toThrow(/resourceVersion is required/);
    });

    it('merge and JSON patches use their content types', async () => {
      await client.mergePatch(widgets, 'w', { metadata: { labels: { a: 'b' } } }, { namespace: 'ns' });
      await client.jsonPatch(widgets, 'w', [{ op: 'test', path: '/metadata/resourceVersion', value: '7' }, { op: 'remove', path: '/spec/x' }], {
        namespace: 'ns',
        subresource: 'status',
      });
      expect(api.requests.map((r) => [r.method, r.url, r.headers['content-type']])).toEqual([
        ['PATCH', '/apis/test.dev/v1/namespaces/ns/widgets/w', 'application/merge-patch+json'],
        ['PATCH', '/apis/test.dev/v1/namespaces/ns/widgets/w/status', 'application/json-patch+json'],
      ]);
      expect(client.requestCounts().patch).toBe(2);
    });

    it('apply sends a server-side apply patch with field manager and force', async () => {
      await client.apply(widgets, { metadata: { name: 'w', namespace: 'ns' } }, { fieldManager: 'nfv-operator' });
      await client.apply(widgets, { metadata: { name: 'w', namespace: 'ns' } }, { fieldManager: 'nfv-node-agent', force: false, subresource: 'status' });
      expect(api.requests.map((r) => [r.method, r.url, r.headers['content-type']])).toEqual([
        ['PATCH', '/apis/test.dev/v1/namespaces/ns/widgets/w?fieldManager=nfv-operator&force=true', 'application/apply-patch+yaml'],
        ['PATCH', '/apis/test.dev/v1/namespaces/ns/widgets/w/status?fieldManager=nfv-node-agent', 'application/apply-patch+yaml'],
      ]);
      expect(JSON.parse(api.requests[0]?.body ?? '')).toMatchObject({ apiVersion: 'test.dev/v1', kind: 'Widget' });
      expect(client.requestCounts().apply).toBe(2);
    });

    it('delete sends preconditions and propagation policy, and returns undefined for a Status answer', async () => {
      const result = await client.delete(widgets, 'w', {
        namespace: 'ns',
        preconditions: { uid: 'u1', resourceVersion: '9' },
        propagationPolicy: 'Foreground',
      });
      expect(result).toBeUndefined();
      expect(api.requests[0]?.method).toBe('DELETE');
      expect(JSON.parse(api.requests[0]?.body ?? '')).toEqual({
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        preconditions: { uid: 'u1', resourceVersion: '9' },
        propagationPolicy: 'Foreground',
      });
      api.route = (_req, res) => json(res, 200, { metadata: { name: 'w', finalizers: ['x'] } });
      expect((await client.delete(widgets, 'w', { namespace: 'ns' }))?.metadata?.finalizers).toEqual(['x']);
    });
  });

  describe('watch', () => {
    it('streams events split across chunks and ends when the server closes', async () => {
      const events = [
        { type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '2' } } },
        { type: 'MODIFIED', object: { metadata: { name: 'ü-ä', resourceVersion: '3' } } },
        { type: 'BOOKMARK', object: { kind: 'Widget', metadata: { resourceVersion: '4' } } },
      ];
      api.route = (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        const text = Buffer.from(events.map((e) => JSON.stringify(e)).join('\n') + '\n');
        // Cut through the middle of a line and of a two-byte character.
        const cut = text.indexOf(Buffer.from('ü')) + 1;
        res.write(text.subarray(0, 5));
        res.write(text.subarray(5, cut));
        setImmediate(() => res.end(text.subarray(cut)));
      };
      const received: WatchEvent<KubeObject>[] = [];
      for await (const event of client.watch(widgets, { namespace: 'ns', resourceVersion: '1', timeoutSeconds: 300, labelSelector: 'a=b' })) {
        received.push(event);
      }
      expect(received.map((e) => [e.type, (e.object as KubeObject).metadata?.name])).toEqual([
        ['ADDED', 'a'],
        ['MODIFIED', 'ü-ä'],
        ['BOOKMARK', undefined],
      ]);
      expect(received[0]?.object).toMatchObject({ apiVersion: 'test.dev/v1', kind: 'Widget' });
      expect(api.requests[0]?.url).toBe(
        '/apis/test.dev/v1/namespaces/ns/widgets?labelSelector=a%3Db&watch=true&allowWatchBookmarks=true&resourceVersion=1&timeoutSeconds=300',
      );
      expect(client.requestCounts().watch).toBe(1);
    });

    it('ends quietly when aborted, even while waiting for the next event', async () => {
      api.route = (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a' } } }) + '\n');
      };
      const abort = new AbortController();
      const received: string[] = [];
      for await (const event of client.watch(widgets, { signal: abort.signal })) {
        received.push(event.type);
        abort.abort();
      }
      expect(received).toEqual(['ADDED']);
    });

    it('throws ApiError when the server refuses the watch', async () => {
      api.route = (_req, res) => json(res, 410, status(410, 'Expired', 'too old resource version: 1 (50)'));
      const iterate = async () => {
        for await (const _ of client.watch(widgets, { resourceVersion: '1' })) void _;
      };
      await expect(iterate()).rejects.toMatchObject({ code: 410, reason: 'Expired' });
    });
  });
});
