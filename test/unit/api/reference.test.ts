import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { REFERENCE_FILE, renderReference } from '../../../src/api/generate-reference.js';
import { buildCrd, type CelRule } from '../../../src/api/crd.js';
import { CRD_DEFINITIONS } from '../../../src/api/index.js';

type Node = Record<string, unknown>;

// Every field path of a CRD schema, spelled as the reference spells them (`[]` for list items).
function fieldPaths(node: Node, path: string): string[] {
  const items = node.type === 'array' ? (node.items as Node | undefined) : undefined;
  const object = items ?? node;
  const prefix = items ? `${path}[]` : path;
  return [path, ...Object.entries((object.properties ?? {}) as Record<string, Node>).flatMap(([name, child]) => fieldPaths(child, `${prefix}.${name}`))];
}

function celRules(node: Node): CelRule[] {
  const own = (node['x-kubernetes-validations'] as CelRule[] | undefined) ?? [];
  const children = Object.values((node.properties ?? {}) as Record<string, Node>).flatMap(celRules);
  return [...own, ...children, ...(node.items ? celRules(node.items as Node) : [])];
}

function openApiSchema(index: number): Node {
  const crd = buildCrd(CRD_DEFINITIONS[index]!) as { spec: { versions: { schema: { openAPIV3Schema: Node } }[] } };
  return crd.spec.versions[0]!.schema.openAPIV3Schema;
}

describe('docs/reference.md', () => {
  test('is up to date (npm run gen:crds)', () => {
    // On failure: run `npm run gen:crds` and commit docs/reference.md with the API change.
    expect(readFileSync(REFERENCE_FILE, 'utf8')).toBe(renderReference());
  });

  test.each(CRD_DEFINITIONS.map((def, index) => ({ kind: def.kind, index })))('$kind: every field of the installed CRD has a row', ({ index }) => {
    const reference = renderReference();
    const props = openApiSchema(index).properties as Record<string, Node>;
    const paths = ['spec', 'status'].filter((f) => props[f]).flatMap((f) => fieldPaths(props[f]!, f));
    expect(paths.length).toBeGreaterThan(5);
    expect(paths.filter((path) => !reference.includes(`| \`${path}\` |`))).toEqual([]);
  });

  test.each(CRD_DEFINITIONS.map((def, index) => ({ kind: def.kind, index })))('$kind: every CEL rule is listed with its message', ({ index }) => {
    const reference = renderReference();
    const rules = celRules(openApiSchema(index));
    const escape = (text: string) => text.replaceAll('|', '\\|');
    expect(rules.filter((r) => !reference.includes(`\`${escape(r.rule)}\` | ${escape(r.message)} |`))).toEqual([]);
  });

  test('a row carries type, default, constraints and description', () => {
    const reference = renderReference();
    expect(reference).toContain(
      "| `spec.cpus.fullCores` | boolean | `true` |  | Take whole physical cores: every hyperthread sibling of a chosen core goes to this VNF, so no other workload shares its core's caches and pipelines.",
    );
    expect(reference).toContain('| `spec.cpus.count` | integer |  | **required**; 1..512 |');
    expect(reference).toContain('| `spec.hugepages.pageSize` | string |  | **required**; one of `2Mi`, `1Gi` |');
    expect(reference).toContain('| `spec.interfaces[].driver` | string | `vfio-pci` | one of `vfio-pci`, `uio_pci_generic`, `igb_uio`, `kernel` |');
    expect(reference).toContain('| `spec.cpus` | object |  | **required**; immutable |');
  });
});
