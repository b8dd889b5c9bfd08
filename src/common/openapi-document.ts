import type { OpenAPIObject } from '@nestjs/swagger';
import { errorResponse } from './api-errors';

/** A schema or a reference, as @nestjs/swagger types them (its interfaces are not exported). */
type SchemaOrReference = NonNullable<NonNullable<OpenAPIObject['components']>['schemas']>[string];
type Operation = NonNullable<OpenAPIObject['paths'][string]['get']>;

const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'] as const;

/**
 * What the decorators cannot say, written into the document after it is built (as documentAccess does for 401
 * and 429), so that it holds for every route, including routes added later:
 *
 * - what every route answers whatever its controller does: the middleware in configureApp refuses a query
 *   parameter named after an Object.prototype member and a body that is not JSON (400), a body over the limit
 *   (413) and an unreadable charset or encoding (415) before any controller runs; 413 and 415 are listed where a
 *   body is taken;
 * - every schema of the API is closed (additionalProperties: false): request bodies by the ValidationPipe's
 *   forbidNonWhitelisted, responses by their mappers, so clients and the contract test can rely on it;
 * - nullable references spelt so that null validates (see nullableReference);
 * - a JSON request or success response without an example of its own gets one assembled from its fields'
 *   examples (the linter checks every example against its schema).
 */
export function documentCommonResponses(document: OpenAPIObject): OpenAPIObject {
  const schemas = document.components?.schemas ?? {};
  for (const schema of Object.values(schemas)) {
    if (!('properties' in schema) || !schema.properties) continue;
    schema.additionalProperties ??= false;
    for (const [name, property] of Object.entries(schema.properties)) {
      schema.properties[name] = nullableReference(property);
    }
  }
  for (const item of Object.values(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (operation) documentOperation(operation, schemas);
    }
  }
  return document;
}

function documentOperation(operation: Operation, schemas: Record<string, SchemaOrReference>): void {
  operation.responses['400'] ??= errorResponse(400, {
    description:
      'A query parameter named after an Object.prototype member (constructor, __proto__, ...), or a body ' +
      'that is not valid JSON',
    message: 'query parameter "constructor" is not allowed',
  });
  const body = operation.requestBody && 'content' in operation.requestBody ? operation.requestBody : undefined;
  if (body) {
    operation.responses['413'] ??= errorResponse(413);
    operation.responses['415'] ??= errorResponse(415);
  }
  // Successes only: an error status's example assembled from a success schema's fields would show a healthy body.
  const successes = Object.entries(operation.responses).filter(([status]) => status.startsWith('2'));
  const contents = [
    body?.content,
    ...successes.map(([, response]) => (response && 'content' in response ? response.content : undefined)),
  ];
  for (const content of contents) {
    const json = content?.['application/json'];
    if (!json?.schema || json.example !== undefined || json.examples !== undefined) continue;
    const example = exampleOf(json.schema, schemas);
    if (example !== undefined) json.example = example;
  }
}

/**
 * `nullable` only applies to the `type` beside it (OpenAPI 3.0.3), so the plugin's `{nullable, type: object,
 * allOf: [$ref]}` still demands an object: null fails the $ref'd schema. Spelt the way 3.0 can say it: the
 * reference, or null.
 */
function nullableReference(property: SchemaOrReference): SchemaOrReference {
  if (!('nullable' in property) || property.nullable !== true || property.allOf?.length !== 1) return property;
  const { allOf, ...rest } = property;
  return { ...rest, type: 'object', anyOf: [allOf[0], { type: 'object', nullable: true, enum: [null] }] };
}

/** An example built from the schema's own examples, or undefined when a required part has none. */
function exampleOf(schema: SchemaOrReference, schemas: Record<string, SchemaOrReference>, depth = 0): unknown {
  if (depth > 16) return undefined; // a guard against cycles; each $ref and allOf counts a level
  if ('$ref' in schema) {
    const target = schemas[schema.$ref.replace('#/components/schemas/', '')];
    return target ? exampleOf(target, schemas, depth + 1) : undefined;
  }
  if (schema.example !== undefined) return schema.example;
  const first = schema.allOf?.[0] ?? schema.anyOf?.[0] ?? schema.oneOf?.[0];
  if (first) return exampleOf(first, schemas, depth + 1);
  if (schema.type === 'array' && schema.items) {
    const item = exampleOf(schema.items, schemas, depth + 1);
    return item === undefined ? undefined : [item];
  }
  if (!schema.properties) return undefined;
  const example: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(schema.properties)) {
    const value = exampleOf(property, schemas, depth + 1);
    if (value === undefined && schema.required?.includes(name)) return undefined;
    if (value !== undefined) example[name] = value;
  }
  return example;
}
