/**
 * JSON schemas in kubeconform's local layout, written without the Python openapi2jsonschema and
 * without the network (kubeconform's default location is GitHub):
 *
 * - built-in kinds from the `api/openapi-spec/swagger.json` of the pinned Kubernetes release (the
 *   Go module `hack/build-tools.sh` already downloads), one standalone file per kind named like
 *   kubeconform's default layout, `{{ .ResourceKind }}{{ .KindSuffix }}.json` (`deployment-apps-v1.json`);
 * - custom resources from the CRDs' `openAPIV3Schema`, named `{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json`
 *   (`virtualnetworkfunction_v1alpha1.json`), as openapi2jsonschema names them.
 *
 * Both are strict the way `kubectl --validate=strict` is: every object that lists its properties
 * refuses any other (`additionalProperties: false`), unless it preserves unknown fields.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** kubeconform `-schema-location` of the files {@link writeBuiltinSchemas} writes into `dir`. */
export const builtinSchemaLocation = (dir: string): string => join(dir, '{{ .ResourceKind }}{{ .KindSuffix }}.json');
/** kubeconform `-schema-location` of the files {@link writeCrdSchemas} writes into `dir`. */
export const crdSchemaLocation = (dir: string): string => join(dir, '{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json');

type Schema = Record<string, unknown>;

/** A kind as manifests name it. */
export interface ManifestKind {
  apiVersion: string;
  kind: string;
}

/** The JSON Schema dialect the files declare (kubeconform would assume draft-04 otherwise). */
const DRAFT = 'http://json-schema.org/draft-07/schema#';

// Both accept a number or a string in JSON; the OpenAPI documents say `string` with a format.
const INT_OR_STRING: Schema = { oneOf: [{ type: 'string' }, { type: 'integer' }] };
const QUANTITY: Schema = { oneOf: [{ type: 'string' }, { type: 'number' }] };

/**
 * kubeconform's file name for a kind: the kind in lower case and `-<first label of the group>-<version>`,
 * or `-<version>` for the core group (see `schemaPath` in kubeconform's pkg/registry/registry.go).
 */
export function builtinSchemaFileName({ apiVersion, kind }: ManifestKind): string {
  const [groupOrVersion, version] = apiVersion.split('/');
  const suffix = version === undefined ? `-${groupOrVersion!.toLowerCase()}` : `-${groupOrVersion!.split('.')[0]!.toLowerCase()}-${version.toLowerCase()}`;
  return `${kind.toLowerCase()}${suffix}.json`;
}

/** Directory of the Kubernetes source of `version` in the Go module cache (downloaded if missing). */
export async function kubernetesSourceDir(version: string): Promise<string> {
  // Outside any Go module, so no go.mod is read or written.
  const { stdout } = await run('go', ['mod', 'download', '-json', `k8s.io/kubernetes@${version}`], { cwd: tmpdir(), maxBuffer: 1 << 20 });
  const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download k8s.io/kubernetes@${version}: ${info.Error ?? 'no Dir in its output'}`);
  return info.Dir;
}

/**
 * Writes one standalone schema per kind in `kinds` from a Kubernetes `swagger.json`: the kind's
 * definition with every definition it reaches, references kept (`#/definitions/...`).
 *
 * @throws if a kind is not in the document: a manifest of an unknown kind must not pass unchecked.
 */
export async function writeBuiltinSchemas(swaggerPath: string, kinds: readonly ManifestKind[], dir: string): Promise<string[]> {
  const swagger = JSON.parse(await readFile(swaggerPath, 'utf8')) as { definitions: Record<string, Schema> };
  const byKind = new Map<string, string>();
  for (const [name, definition] of Object.entries(swagger.definitions)) {
    for (const gvk of (definition['x-kubernetes-group-version-kind'] ?? []) as { group: string; version: string; kind: string }[]) {
      const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
      byKind.set(`${apiVersion} ${gvk.kind}`, name);
    }
  }
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const manifestKind of kinds) {
    const name = byKind.get(`${manifestKind.apiVersion} ${manifestKind.kind}`);
    if (!name) throw new Error(`${swaggerPath} defines no ${manifestKind.kind} in ${manifestKind.apiVersion}`);
    const definitions: Record<string, Schema> = {};
    for (const reached of reachableDefinitions(swagger.definitions, name)) {
      definitions[reached] = strictSchema(builtinDefinition(reached, swagger.definitions[reached]!));
    }
    const schema = { $schema: DRAFT, ...definitions[name], definitions };
    const file = join(dir, builtinSchemaFileName(manifestKind));
    await writeFile(file, JSON.stringify(schema));
    written.push(file);
  }
  return written;
}

function builtinDefinition(name: string, definition: Schema): Schema {
  if (name === 'io.k8s.apimachinery.pkg.api.resource.Quantity') return { description: definition.description, ...QUANTITY };
  if (definition.format === 'int-or-string') return { description: definition.description, ...INT_OR_STRING };
  return definition;
}

function reachableDefinitions(definitions: Record<string, Schema>, root: string): Set<string> {
  const seen = new Set<string>();
  const pending = [root];
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (seen.has(name)) continue;
    if (!definitions[name]) throw new Error(`swagger.json refers to a missing definition ${name}`);
    seen.add(name);
    for (const match of JSON.stringify(definitions[name]).matchAll(/"\$ref":"#\/definitions\/([^"]+)"/g)) pending.push(match[1]!);
  }
  return seen;
}

/** A CRD as far as the conversion reads it. */
interface CrdDocument {
  kind?: string;
  spec?: { names: { kind: string }; versions: { name: string; schema?: { openAPIV3Schema?: Schema } }[] };
}

/** Writes the schema of every version of every CRD in `crds`; returns the files. */
export async function writeCrdSchemas(crds: readonly unknown[], dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const crd of crds as CrdDocument[]) {
    if (crd?.kind !== 'CustomResourceDefinition' || !crd.spec) continue;
    for (const version of crd.spec.versions) {
      const openApi = version.schema?.openAPIV3Schema;
      if (!openApi) continue;
      const file = join(dir, `${crd.spec.names.kind.toLowerCase()}_${version.name.toLowerCase()}.json`);
      await writeFile(file, JSON.stringify({ $schema: DRAFT, ...strictSchema(crdSchema(openApi)) }));
      written.push(file);
    }
  }
  return written;
}

/** The structural-schema extensions that JSON Schema spells differently. */
function crdSchema(node: unknown): Schema {
  return mapSchema(node, (schema) => {
    if (schema['x-kubernetes-int-or-string'] === true) {
      const rest = { ...schema };
      delete rest.type;
      delete rest['x-kubernetes-int-or-string'];
      return { ...rest, ...INT_OR_STRING };
    }
    if (schema.nullable === true && typeof schema.type === 'string') return { ...schema, type: [schema.type, 'null'] };
    return schema;
  });
}

/** `additionalProperties: false` on every object that lists properties and keeps no unknown fields. */
export function strictSchema(node: unknown): Schema {
  return mapSchema(node, (schema) =>
    schema.properties && schema.additionalProperties === undefined && schema['x-kubernetes-preserve-unknown-fields'] !== true
      ? { ...schema, additionalProperties: false }
      : schema,
  );
}

// Keywords whose value is a map of schemas, a schema (or a list of them), or a list of schemas.
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions']);
const SCHEMA_VALUES = new Set(['items', 'additionalProperties', 'additionalItems', 'not']);
const SCHEMA_LISTS = new Set(['allOf', 'anyOf', 'oneOf']);

/** Applies `transform` to every schema of a tree, children first; everything else is data. */
function mapSchema(node: unknown, transform: (schema: Schema) => Schema): Schema {
  const visit = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(visit);
    // `additionalProperties: false` and the like are schemas too, with nothing inside.
    if (value === null || typeof value !== 'object') return value;
    const copy: Schema = {};
    for (const [key, child] of Object.entries(value as Schema)) {
      if (SCHEMA_MAPS.has(key) && child && typeof child === 'object') {
        copy[key] = Object.fromEntries(Object.entries(child as Schema).map(([name, sub]) => [name, visit(sub)]));
      } else if (SCHEMA_VALUES.has(key) || SCHEMA_LISTS.has(key)) {
        copy[key] = visit(child);
      } else {
        copy[key] = child;
      }
    }
    return transform(copy);
  };
  return visit(node) as Schema;
}
