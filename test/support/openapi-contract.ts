import Ajv, { type ValidateFunction } from 'ajv';

/** The parts of an OpenAPI 3.0 document the contract test reads. */
export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, unknown> };
}
export interface OpenApiOperation {
  responses: Record<
    string,
    { description?: string; headers?: Record<string, unknown>; content?: Record<string, { schema?: unknown }> }
  >;
}

export const HTTP_METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'];

/** `method /path/{param}` of every operation in the document. */
export function documentedOperations(document: OpenApiDocument): string[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((method) => HTTP_METHODS.includes(method))
      .map((method) => `${method} ${path}`),
  );
}

const DOCUMENT_ID = 'openapi';
/** OpenAPI keywords that are annotations, or that JSON Schema spells otherwise (nullable: see below). */
const DROPPED_KEYWORDS = new Set(['example', 'examples', 'nullable', 'xml', 'externalDocs', 'deprecated', 'discriminator']);

/**
 * An OpenAPI 3.0 schema as JSON Schema (draft-07, what ajv's default class reads): `nullable: true` beside a
 * `type` adds "null" to it (the 3.0.3 meaning), annotations ajv does not know are dropped, and references to
 * components point into the document's schema registered under DOCUMENT_ID. Nothing is loosened:
 * additionalProperties, required, enum and formats stay as the document says them.
 */
export function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (typeof node !== 'object' || node === null) return node;
  const schema = node as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (DROPPED_KEYWORDS.has(key)) continue;
    if (key === '$ref' && typeof value === 'string') {
      out.$ref = value.replace(/^#\/components\/schemas\//, `${DOCUMENT_ID}#/definitions/`);
    } else if (key === 'properties' && typeof value === 'object' && value !== null) {
      // Property names are names, not keywords: only their schemas are converted.
      out.properties = Object.fromEntries(Object.entries(value).map(([name, property]) => [name, toJsonSchema(property)]));
    } else {
      out[key] = toJsonSchema(value);
    }
  }
  if (schema.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  return out;
}

/** RFC 3339 date-time, as the API writes it (a JavaScript ISO string) or with an offset. */
function isDateTime(value: string): boolean {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value) && !Number.isNaN(Date.parse(value));
}

/** Validators of the document's schemas: one ajv holding every component, strict about the schemas themselves. */
export class SchemaValidator {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(document: OpenApiDocument) {
    this.ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, formats: { 'date-time': isDateTime } });
    this.ajv.addSchema({ $id: DOCUMENT_ID, definitions: toJsonSchema(document.components.schemas) });
  }

  /** The problems of `value` against the OpenAPI `schema` (empty when it conforms). */
  problems(schema: unknown, value: unknown): string[] {
    const key = JSON.stringify(schema);
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(toJsonSchema(schema) as object);
      this.compiled.set(key, validate);
    }
    if (validate(value)) return [];
    return (validate.errors ?? []).map((error) => {
      const extra = (error.params as { additionalProperty?: string }).additionalProperty;
      return `${error.instancePath || '(body)'} ${error.message ?? 'is invalid'}${extra ? ` "${extra}"` : ''}`;
    });
  }
}
