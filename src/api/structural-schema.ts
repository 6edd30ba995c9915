/**
 * Turns the JSON Schema that zod 4 emits into a Kubernetes structural schema
 * (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
 * every node typed, no JSON-Schema-only keywords, and string patterns that carry a friendly
 * message turned into CEL rules so the API server's error says how to fix the value.
 */

/** A JSON (and OpenAPI v3) schema node. */
export type SchemaNode = { [key: string]: unknown };

/** Metadata key that {@link celPatternMeta} sets: the message for a failed pattern. */
export const PATTERN_MESSAGE_KEY = 'x-nfv-pattern-message';

const DROPPED_KEYS = ['$schema', '$id', 'propertyNames'];
const UNSUPPORTED_KEYS = ['anyOf', 'oneOf', 'allOf', 'not', '$ref', 'const', 'if', 'then', 'else'];

/** Converts a zod-emitted JSON schema node (recursively) into a structural OpenAPI v3 schema. */
export function toStructural(node: SchemaNode, path = ''): SchemaNode {
  const unsupported = UNSUPPORTED_KEYS.find((key) => key in node);
  if (unsupported) {
    throw new Error(`${path || '<root>'}: "${unsupported}" cannot be expressed in a structural schema; use CEL`);
  }
  const out: SchemaNode = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROPPED_KEYS.includes(key) || key === PATTERN_MESSAGE_KEY) continue;
    out[key] = value;
  }
  dropSafeIntegerBounds(out);
  turnPatternIntoCel(node, out);

  if (isSchema(out.additionalProperties) && Object.keys(out.additionalProperties).length === 0) {
    // z.looseObject / passthrough: an arbitrary object.
    delete out.additionalProperties;
    delete out.properties;
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  if (out.additionalProperties === false) delete out.additionalProperties;
  if (isSchema(out.properties)) {
    out.properties = Object.fromEntries(
      Object.entries(out.properties).map(([name, child]) => [name, toStructural(child as SchemaNode, `${path}.${name}`)]),
    );
  }
  if (isSchema(out.additionalProperties)) {
    out.additionalProperties = toStructural(out.additionalProperties, `${path}[*]`);
  }
  if (isSchema(out.items)) out.items = toStructural(out.items, `${path}[]`);
  if (out.type === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    throw new Error(`${path || '<root>'}: every schema node needs a type to be structural`);
  }
  return out;
}

function isSchema(value: unknown): value is SchemaNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// zod bounds z.int() by Number.MAX_SAFE_INTEGER; int64 fields need no such bound.
function dropSafeIntegerBounds(out: SchemaNode): void {
  if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
  if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;
}

// A bare pattern failure reads "should match '^[0-9a-f]{4}:...'": a CEL rule can say what is
// expected and give an example instead.
function turnPatternIntoCel(source: SchemaNode, out: SchemaNode): void {
  const message = source[PATTERN_MESSAGE_KEY];
  if (typeof message !== 'string' || typeof out.pattern !== 'string') return;
  if (out.pattern.includes("'")) throw new Error(`pattern ${out.pattern} cannot hold a quote in a CEL raw string`);
  const rules = Array.isArray(out['x-kubernetes-validations']) ? out['x-kubernetes-validations'] : [];
  out['x-kubernetes-validations'] = [...rules, { rule: `self.matches(r'${out.pattern}')`, message }];
  delete out.pattern;
}
