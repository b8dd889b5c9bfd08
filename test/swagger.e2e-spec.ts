import { createTestApp, TestApp } from './support/test-app';

/** The parts of an OpenAPI 3 document these tests read. */
interface Schema {
  type?: string;
  format?: string;
  $ref?: string;
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  description?: string;
  example?: unknown;
  nullable?: boolean;
  enum?: unknown[];
}
interface Parameter {
  name: string;
  in: string;
  description?: string;
  example?: unknown;
  schema?: Schema;
}
interface MediaType {
  schema?: Schema;
  example?: unknown;
  examples?: unknown;
}
interface Operation {
  summary?: string;
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, MediaType> };
  responses: Record<string, { description?: string; content?: Record<string, MediaType> }>;
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

const HTTP_METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'];
const ERROR_SCHEMA_REF = '#/components/schemas/ErrorResponseDto';

/** Every endpoint of SPEC with the error statuses it must document (the error schema for each). */
const EXPECTED_OPERATIONS: Array<[method: string, path: string, errors: number[]]> = [
  ['post', '/meters', [400, 409]],
  ['get', '/meters', [400]],
  ['get', '/meters/{meterId}', [400, 404]],
  ['patch', '/meters/{meterId}', [400, 404, 409]],
  ['delete', '/meters/{meterId}', [400, 404]],
  ['get', '/meters/{meterId}/data', [400, 404, 502, 504]],
  ['get', '/meters/{meterId}/stats', [400, 404]],
];

describe('Swagger UI and the OpenAPI document (SPEC 8)', () => {
  let t: TestApp;
  let doc: OpenApiDocument;

  beforeAll(async () => {
    t = await createTestApp('swagger');
    const response = await t.http().get('/docs-json').expect(200).expect('Content-Type', /application\/json/);
    doc = response.body as OpenApiDocument;
  });
  afterAll(async () => {
    await t?.close();
  });

  const operations = (): Array<[method: string, path: string, operation: Operation]> =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => HTTP_METHODS.includes(method))
        .map(([method, operation]): [string, string, Operation] => [method, path, operation]),
    );

  const resolve = (schema: Schema | undefined): Schema | undefined => {
    if (!schema?.$ref) return schema;
    const name = schema.$ref.replace('#/components/schemas/', '');
    return doc.components.schemas[name];
  };

  /** Routes the Express app really serves (Swagger's own excluded), as `method /openapi/{path}`. */
  const servedRoutes = (): string[] => {
    const express = t.app.getHttpAdapter().getInstance() as {
      router?: { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> };
    };
    const stack = express.router?.stack ?? [];
    return stack
      .filter((layer) => layer.route && !layer.route.path.startsWith('/docs'))
      .flatMap((layer) =>
        Object.keys(layer.route!.methods)
          .filter((method) => method !== '_all')
          .map((method) => `${method} ${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`),
      )
      .sort();
  };

  describe('GET /docs', () => {
    it('answers the Swagger UI page', async () => {
      const response = await t.http().get('/docs').expect(200).expect('Content-Type', /text\/html/);
      expect(response.text).toContain('<title>Swagger UI</title>');
      expect(response.text).toContain('swagger-ui');
    });

    it('serves every script and stylesheet the page refers to', async () => {
      const page = await t.http().get('/docs').expect(200);
      const assets = [...page.text.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((match) => match[1]);
      expect(assets.length).toBeGreaterThanOrEqual(3);
      for (const asset of assets) {
        const path = new URL(asset, 'http://127.0.0.1/docs').pathname;
        const response = await t.http().get(path);
        expect({ path, status: response.status }).toEqual({ path, status: 200 });
        expect(response.text.length).toBeGreaterThan(0);
      }
    });

    it('initialises the UI with the API document', async () => {
      const init = await t.http().get('/docs/swagger-ui-init.js').expect(200);
      expect(init.text).toContain('"/meters/{meterId}/stats"');
    });
  });

  describe('GET /docs-json', () => {
    it('is an OpenAPI 3 document describing the service', () => {
      expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
      expect(doc.info.title).toBe('Electric Meter');
      expect(doc.info.version).toEqual(expect.any(String));
    });

    it('lists exactly the endpoints the app serves', () => {
      const documented = operations()
        .map(([method, path]) => `${method} ${path}`)
        .sort();
      const served = servedRoutes();
      expect(served.length).toBeGreaterThanOrEqual(8);
      expect(documented).toEqual(served);
    });

    it.each([
      ...EXPECTED_OPERATIONS.map(([method, path]) => [method, path]),
      ['get', '/health'],
      ['get', '/health/live'],
      ['get', '/health/ready'],
    ])(
      'documents %s %s with a summary',
      (method, path) => {
        const operation = doc.paths[path]?.[method];
        expect(operation).toBeDefined();
        expect(operation.summary?.trim().length ?? 0).toBeGreaterThan(5);
      },
    );

    it('gives every operation a summary', () => {
      for (const [method, path, operation] of operations()) {
        expect({ method, path, summary: typeof operation.summary === 'string' && operation.summary.length > 0 }).toEqual({
          method,
          path,
          summary: true,
        });
      }
    });

    it.each(EXPECTED_OPERATIONS)('%s %s documents its errors %j with the error schema', (method, path, statuses) => {
      const responses = doc.paths[path][method].responses;
      for (const status of statuses) {
        const response = responses[String(status)];
        expect({ status, documented: response !== undefined }).toEqual({ status, documented: true });
        expect(response.description?.length ?? 0).toBeGreaterThan(0);
        expect(response.content?.['application/json']?.schema?.$ref).toBe(ERROR_SCHEMA_REF);
      }
    });

    it('documents every 4xx and 5xx response of the meter endpoints with the error schema', () => {
      const meterOperations = operations().filter(([, path]) => path.startsWith('/meters'));
      expect(meterOperations.length).toBeGreaterThanOrEqual(7);
      for (const [method, path, operation] of meterOperations) {
        const errors = Object.keys(operation.responses).filter((status) => Number(status) >= 400);
        expect({ method, path, hasClientError: errors.some((status) => status.startsWith('4')) }).toEqual({
          method,
          path,
          hasClientError: true,
        });
        for (const status of errors) {
          expect({ method, path, status, ref: operation.responses[status].content?.['application/json']?.schema?.$ref }).toEqual({
            method,
            path,
            status,
            ref: ERROR_SCHEMA_REF,
          });
        }
      }
    });

    it.each([
      ['/health', 'ReadinessDto'],
      ['/health/ready', 'ReadinessDto'],
      ['/health/live', 'LivenessDto'],
    ])('documents %s answering 200 and 503 with the terminus body %s', (path, schema) => {
      const responses = doc.paths[path].get.responses;
      expect(responses['200'].content?.['application/json']?.schema?.$ref).toBe(`#/components/schemas/${schema}`);
      expect(responses['503'].content?.['application/json']?.schema?.$ref).toBe(`#/components/schemas/${schema}`);
      expect(Object.keys(doc.components.schemas[schema].properties ?? {}).sort()).toEqual(['details', 'error', 'info', 'status']);
    });

    it('describes the error schema as {statusCode, error, message}', () => {
      const schema = doc.components.schemas.ErrorResponseDto;
      expect(Object.keys(schema.properties ?? {}).sort()).toEqual(['error', 'message', 'statusCode']);
      expect([...(schema.required ?? [])].sort()).toEqual(['error', 'message', 'statusCode']);
    });

    it('documents the meter create body: meter_id, address, port, name, enabled, each with description and example', () => {
      const body = doc.paths['/meters'].post.requestBody?.content?.['application/json']?.schema;
      const schema = resolve(body);
      expect(schema).toBeDefined();
      const properties = schema!.properties ?? {};
      expect(Object.keys(properties).sort()).toEqual(['address', 'enabled', 'meter_id', 'name', 'port']);
      expect([...(schema!.required ?? [])].sort()).toEqual(['address', 'meter_id', 'port']);
      const missing = Object.entries(properties).flatMap(([field, property]) => [
        ...((property.description ?? '').length > 0 ? [] : [`${field}: no description`]),
        ...(property.example !== undefined ? [] : [`${field}: no example`]),
      ]);
      expect(missing).toEqual([]);
      expect(properties.meter_id).toMatchObject({ type: 'string' });
      expect(properties.address).toMatchObject({ type: 'string' });
      expect(properties.port).toMatchObject({ type: 'integer', minimum: 1, maximum: 65535 });
      expect(properties.name).toMatchObject({ type: 'string', nullable: true });
      expect(properties.enabled).toMatchObject({ type: 'boolean' });
    });

    it('gives every field of every schema a description or an example, and a real type', () => {
      const problems: string[] = [];
      for (const [schemaName, schema] of Object.entries(doc.components.schemas)) {
        if (Object.keys(schema.properties ?? {}).length === 0) problems.push(`${schemaName}: no properties`);
        for (const [field, property] of Object.entries(schema.properties ?? {})) {
          const refersToSchema =
            property.$ref !== undefined ||
            property.items?.$ref !== undefined ||
            property.allOf?.some((part) => part.$ref) === true ||
            property.anyOf?.some((part) => part.$ref) === true;
          const typed =
            refersToSchema || property.oneOf !== undefined || (property.type !== undefined && property.type !== 'object');
          const explained = refersToSchema || property.description !== undefined || property.example !== undefined;
          if (!typed) problems.push(`${schemaName}.${field}: no type (${JSON.stringify(property)})`);
          if (!explained) problems.push(`${schemaName}.${field}: neither description nor example`);
        }
      }
      expect(problems).toEqual([]);
    });

    it('gives every JSON request body, success and error response an example', () => {
      const missing: string[] = [];
      for (const [method, path, operation] of operations()) {
        const bodies: Array<[string, MediaType | undefined]> = [
          ['request', operation.requestBody?.content?.['application/json']],
          ...Object.entries(operation.responses)
            .map(([status, response]): [string, MediaType | undefined] => [status, response.content?.['application/json']])
            .filter(([status, json]) => status.startsWith('2') || json?.schema?.$ref === ERROR_SCHEMA_REF),
        ];
        for (const [what, json] of bodies) {
          if (json && json.example === undefined && json.examples === undefined) missing.push(`${method} ${path} ${what}`);
        }
      }
      expect(missing).toEqual([]);
    });

    it('gives every parameter a type and a description or an example', () => {
      const problems: string[] = [];
      for (const [method, path, operation] of operations()) {
        for (const parameter of operation.parameters ?? []) {
          const where = `${method} ${path} ${parameter.in} ${parameter.name}`;
          const schema = parameter.schema ?? {};
          if (schema.type === undefined || schema.type === 'object') problems.push(`${where}: no type`);
          if (parameter.description === undefined && parameter.example === undefined && schema.example === undefined) {
            problems.push(`${where}: neither description nor example`);
          }
        }
      }
      expect(problems).toEqual([]);
    });

    it('has no reference to a schema it does not define', () => {
      const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((match) => match[1]);
      expect(refs.length).toBeGreaterThan(10);
      for (const name of new Set(refs)) {
        expect({ name, defined: doc.components.schemas[name] !== undefined }).toEqual({ name, defined: true });
      }
    });
  });

  describe('the document matches what the API answers', () => {
    it('accepts the documented create example and answers with the documented meter fields', async () => {
      const createSchema = resolve(doc.paths['/meters'].post.requestBody?.content?.['application/json']?.schema)!;
      const example = Object.fromEntries(
        Object.entries(createSchema.properties ?? {}).map(([field, property]) => [field, property.example]),
      );
      const response = await t.http().post('/meters').send(example).expect(201);
      const meterSchema = resolve(doc.paths['/meters'].post.responses['201'].content?.['application/json']?.schema)!;
      expect(Object.keys(response.body).sort()).toEqual(Object.keys(meterSchema.properties ?? {}).sort());
      expect(response.body).toMatchObject(example);
      await t.http().delete(`/meters/${String(example.meter_id)}`).expect(204);
    });

    it('answers errors in the documented error shape', async () => {
      const errorFields = Object.keys(doc.components.schemas.ErrorResponseDto.properties ?? {}).sort();
      const notFound = await t.http().get('/meters/no-such-meter').expect(404);
      expect(Object.keys(notFound.body).sort()).toEqual(errorFields);
      const invalid = await t.http().post('/meters').send({ meter_id: 'x', address: '127.0.0.1', port: '80' }).expect(400);
      expect(Object.keys(invalid.body).sort()).toEqual(errorFields);
    });

    it.each([
      ['/health', 'ReadinessDto', 'ReadinessDetailsDto'],
      ['/health/ready', 'ReadinessDto', 'ReadinessDetailsDto'],
      ['/health/live', 'LivenessDto', 'LivenessDetailsDto'],
    ])('answers %s with the documented fields and checks', async (path, schema, detailsSchema) => {
      const response = await t.http().get(path).expect(200);
      const fields = (name: string) => Object.keys(doc.components.schemas[name].properties ?? {}).sort();
      expect(Object.keys(response.body).sort()).toEqual(fields(schema));
      expect(Object.keys(response.body.details).sort()).toEqual(fields(detailsSchema));
      for (const [check, body] of Object.entries(response.body.details as Record<string, Record<string, unknown>>)) {
        const property = doc.components.schemas[detailsSchema].properties?.[check] as Schema & { allOf?: Schema[] };
        const documented = Object.keys(resolve(property?.allOf?.[0] ?? property)?.properties ?? {});
        expect({ check, documented: documented.length > 0 }).toEqual({ check, documented: true });
        expect({ check, undocumented: Object.keys(body).filter((key) => !documented.includes(key)) }).toEqual({ check, undocumented: [] });
      }
    });
  });
});
