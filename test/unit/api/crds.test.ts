import { describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHART_CRDS_DIR, CRDS_DIR, renderCrdFiles } from '../../../src/api/generate-crds.js';
import { buildCrd } from '../../../src/api/crd.js';
import { CRD_DEFINITIONS } from '../../../src/api/index.js';
import { toStructural } from '../../../src/api/structural-schema.js';

type Node = Record<string, unknown>;

// Every property below spec and status must say what it is: `kubectl explain` prints these.
function undocumented(node: Node, path: string): string[] {
  const missing: string[] = [];
  if (!node.description) missing.push(path);
  for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Node>)) {
    missing.push(...undocumented(child, `${path}.${name}`));
  }
  if (node.items) missing.push(...undocumented(node.items as Node, `${path}[]`).filter((p) => p !== `${path}[]`));
  return missing;
}

function rootSchema(kindIndex: number): Node {
  const crd = buildCrd(CRD_DEFINITIONS[kindIndex]!) as { spec: { versions: { schema: { openAPIV3Schema: Node } }[] } };
  return crd.spec.versions[0]!.schema.openAPIV3Schema;
}

describe('generated CRDs', () => {
  test.each([...renderCrdFiles()].map(([name, text]) => ({ name, text })))('crds/$name is up to date (npm run gen:crds)', ({ name, text }) => {
    expect(readFileSync(join(CRDS_DIR, name), 'utf8')).toBe(text);
  });

  test.each([...renderCrdFiles()].map(([name, text]) => ({ name, text })))('charts/nfv-operator/crds/$name is up to date (npm run gen:crds)', ({ name, text }) => {
    expect(readFileSync(join(CHART_CRDS_DIR, name), 'utf8')).toBe(text);
  });

  test('the chart holds exactly the generated CRDs, no stale extra file', () => {
    const generated = [...renderCrdFiles().keys()].sort();
    expect(readdirSync(CHART_CRDS_DIR).sort()).toEqual(generated);
  });

  test.each(CRD_DEFINITIONS.map((def, index) => ({ kind: def.kind, index })))('$kind documents every field', ({ index }) => {
    const props = rootSchema(index).properties as Record<string, Node>;
    const missing = ['spec', 'status'].filter((f) => props[f]).flatMap((f) => undocumented(props[f]!, f));
    expect(missing).toEqual([]);
  });

  test('a schema that is not structural is refused with its path', () => {
    expect(() => toStructural({ type: 'object', properties: { a: { anyOf: [{ type: 'string' }, { type: 'integer' }] } } })).toThrow(
      /\.a: "anyOf" cannot be expressed/,
    );
    expect(() => toStructural({ type: 'object', properties: { b: { description: 'untyped' } } })).toThrow(/\.b: every schema node needs a type/);
  });
});
