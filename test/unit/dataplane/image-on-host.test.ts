/** What the namespace sandbox runs in place of an image (test/host/dataplane/images.ts, imageOnHost). */
import { existsSync } from 'node:fs';
import { imageOnHost, IMAGES } from '../../host/dataplane/images.js';

describe('imageOnHost', () => {
  test("l2fwd: the entrypoint script the Dockerfile copies, at its place in the repository, and the Dockerfile's ENV", () => {
    const l2fwd = imageOnHost(IMAGES.l2fwd);
    expect(l2fwd.entrypoint).toEqual([expect.stringMatching(/\/images\/l2fwd\/vnf-l2fwd$/)]);
    expect(existsSync(l2fwd.entrypoint[0]!)).toBe(true);
    expect(l2fwd.env).toEqual({ NFV_L2FWD_MODE: 'io', NFV_STATS_PERIOD: '10' });
  });

  test('an image that is not the project’s is refused by name', () => {
    expect(() => imageOnHost('debian:bookworm')).toThrow("image debian:bookworm is not one of the project's images");
  });
});
