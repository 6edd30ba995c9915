import { afterEach, describe, expect, test } from '@jest/globals';
import { MetricsServer, parseListenAddress, type ListenAddress, type ReadinessReport } from '../../../src/metrics/http-server.js';
import { MetricsRegistry, PROMETHEUS_TEXT_CONTENT_TYPE } from '../../../src/metrics/prometheus-text.js';
import { silentLogger } from '../runtime/test-support.js';

describe('parseListenAddress', () => {
  test.each<[string, ListenAddress]>([
    [':8080', { port: 8080 }],
    ['127.0.0.1:9090', { host: '127.0.0.1', port: 9090 }],
    ['0.0.0.0:0', { host: '0.0.0.0', port: 0 }],
    ['localhost:65535', { host: 'localhost', port: 65535 }],
    ['[::1]:8443', { host: '::1', port: 8443 }],
    ['[::]:8080', { host: '::', port: 8080 }],
  ])('%s', (text, address) => {
    expect(parseListenAddress(text)).toEqual(address);
  });

  test.each(['8080', '', ':', 'host:', ':65536', ':http', '::1:8080', '[::1]', 'a:b:80'])('rejects %j', (text) => {
    expect(() => parseListenAddress(text)).toThrow(/is not \[host\]:port/);
  });
});

describe('MetricsServer', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  async function start(readiness: ReadinessReport = { ready: true, message: 'leading, 5 informers synced' }, registry = new MetricsRegistry()) {
    server = new MetricsServer({ address: '127.0.0.1:0', registry, readiness: () => readiness, logger: silentLogger() });
    const { url } = await server.start();
    return url;
  }

  test('serves the registry on /metrics in text format 0.0.4', async () => {
    const registry = new MetricsRegistry().register(() => [{ name: 'nfv_operator_leader', help: 'Leader.', type: 'gauge', samples: [{ value: 1 }] }]);
    const url = await start(undefined, registry);
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(PROMETHEUS_TEXT_CONTENT_TYPE);
    expect(await res.text()).toBe('# HELP nfv_operator_leader Leader.\n# TYPE nfv_operator_leader gauge\nnfv_operator_leader 1\n');
  });

  test.each<{ name: string; path: string; method?: string; readiness?: ReadinessReport; status: number; body: string | RegExp }>([
    { name: 'liveness', path: '/healthz', status: 200, body: 'ok\n' },
    { name: 'liveness whatever readiness says', path: '/healthz', readiness: { ready: false, message: 'x' }, status: 200, body: 'ok\n' },
    { name: 'ready', path: '/readyz', status: 200, body: 'ok: leading, 5 informers synced\n' },
    { name: 'ready, query string ignored', path: '/readyz?verbose=1', status: 200, body: 'ok: leading, 5 informers synced\n' },
    { name: 'not ready', path: '/readyz', readiness: { ready: false, message: 'leading, waiting for informers to sync: pods' }, status: 503, body: 'not ready: leading, waiting for informers to sync: pods\n' },
    { name: 'unknown path', path: '/metricz', status: 404, body: /no such endpoint \/metricz; try \/metrics, \/healthz or \/readyz/ },
    { name: 'POST', path: '/metrics', method: 'POST', status: 405, body: 'POST is not allowed on /metrics\n' },
    { name: 'HEAD has no body', path: '/readyz', method: 'HEAD', status: 200, body: '' },
  ])('$name: $method $path → $status', async ({ path, method, readiness, status, body }) => {
    const url = await start(readiness);
    const res = await fetch(`${url}${path}`, { method: method ?? 'GET' });
    expect(res.status).toBe(status);
    const text = await res.text();
    if (typeof body === 'string') expect(text).toBe(body);
    else expect(text).toMatch(body);
    if (status === 405) expect(res.headers.get('allow')).toBe('GET, HEAD');
  });

  test('a failing collector answers 500 and the server keeps serving', async () => {
    const registry = new MetricsRegistry().register(() => {
      throw new Error('cache gone');
    });
    const url = await start(undefined, registry);
    expect((await fetch(`${url}/metrics`)).status).toBe(500);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  test('a port in use fails start with the address', async () => {
    const url = await start();
    const port = new URL(url).port;
    const second = new MetricsServer({ address: `127.0.0.1:${port}`, registry: new MetricsRegistry(), readiness: () => ({ ready: true, message: '' }), logger: silentLogger() });
    await expect(second.start()).rejects.toThrow(`metrics server cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
  });

  test('stop closes keep-alive connections and is idempotent', async () => {
    const url = await start();
    expect((await fetch(`${url}/healthz`, { headers: { connection: 'keep-alive' } })).status).toBe(200);
    await server!.stop();
    await server!.stop();
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  test('an address that does not parse is refused at construction', () => {
    expect(() => new MetricsServer({ address: '8080', registry: new MetricsRegistry(), readiness: () => ({ ready: true, message: '' }), logger: silentLogger() })).toThrow(
      /listen address "8080"/,
    );
  });
});
