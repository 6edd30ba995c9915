import { z } from 'zod';
import { API_VERSION, GROUP, VERSION } from './group.js';
import { PATTERN_MESSAGE_KEY, toStructural, type SchemaNode } from './structural-schema.js';

/** A CEL rule on a schema node (x-kubernetes-validations). */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
}

/** An additional printer column of `kubectl get`. */
export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  /** 0 shows in `kubectl get`, 1 only with `-o wide`. Default 0. */
  priority?: number;
}

/** Everything a CRD is generated from: names, the zod schemas of spec and status, columns. */
export interface CrdDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  scope: 'Namespaced' | 'Cluster';
  /** Shown by `kubectl explain <kind>`. */
  description: string;
  /** Absent for status-only kinds such as NfvNode. */
  spec?: z.ZodType;
  status: z.ZodType;
  /** Rules that need metadata.name next to spec, so they must sit on the root. */
  rootValidations?: CelRule[];
  printerColumns: PrinterColumn[];
  /** Fields usable in field selectors (CRD selectableFields), e.g. `.status.placement.node`. */
  selectableFields?: string[];
}

/**
 * A string validated by `pattern` at run time (zod) and, in the CRD, by a CEL rule whose error
 * is `message`: a message that says what is expected reads better than a regular expression.
 */
export function celPattern(pattern: string, message: string) {
  return z
    .string()
    .max(256)
    .regex(new RegExp(pattern))
    .meta({ [PATTERN_MESSAGE_KEY]: message });
}

/** Structural OpenAPI v3 schema of a zod type, with input-side optionality (defaults are optional). */
export function structuralSchemaOf(schema: z.ZodType, path: string): SchemaNode {
  return toStructural(z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as SchemaNode, path);
}

/** The apiextensions.k8s.io/v1 CustomResourceDefinition of a kind. */
export function buildCrd(def: CrdDefinition): Record<string, unknown> {
  const properties: Record<string, SchemaNode> = {
    apiVersion: { type: 'string', description: `${API_VERSION}` },
    kind: { type: 'string', description: def.kind },
    metadata: { type: 'object' },
  };
  if (def.spec) properties.spec = structuralSchemaOf(def.spec, '.spec');
  properties.status = structuralSchemaOf(def.status, '.status');
  const root: SchemaNode = { type: 'object', description: def.description, properties };
  if (def.spec) root.required = ['spec'];
  if (def.rootValidations?.length) root['x-kubernetes-validations'] = def.rootValidations;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: def.categories,
      },
      scope: def.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: root },
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns,
          ...(def.selectableFields ? { selectableFields: def.selectableFields.map((jsonPath) => ({ jsonPath })) } : {}),
        },
      ],
    },
  };
}
