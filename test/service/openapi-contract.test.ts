import { OpenApiContract } from '../support/openapi-contract';

// The contract checker the e2e, fuzz and CLI suites rely on: it must find each kind of break.
const doc = {
  openapi: '3.1.0',
  components: { schemas: { Thing: { type: 'object', properties: { id: { type: 'string', format: 'uuid' }, n: { type: 'integer' } }, required: ['id'], additionalProperties: false } } },
  paths: {
    '/things/{id}': {
      get: {
        responses: {
          '200': { description: 'a thing', content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } },
          '4XX': { description: 'problem', content: { 'application/problem+json': { schema: { type: 'object', required: ['code'] } } } },
        },
      },
    },
    '/things/special': { get: { responses: { '204': { description: 'no body' } } } },
    '/text': { get: { responses: { default: { description: 'text', content: { 'text/*': { schema: { type: 'string' } } } } } } },
  },
};
const ID = '01900000-0000-7000-8000-000000000000';

describe('OpenApiContract (the checker of the contract suites)', () => {
  const contract = new OpenApiContract(doc);
  const get = (target: string, status: number, body: unknown, contentType = 'application/json; charset=utf-8') =>
    contract.check({ method: 'GET', target, status, contentType, body: typeof body === 'string' ? body : JSON.stringify(body) });

  it('accepts answers as documented: exact status, a 4XX range, default, media type ranges, $refs', () => {
    expect(get(`/things/${ID}?x=1`, 200, { id: ID, n: 1 })).toEqual([]);
    expect(get(`/things/${ID}`, 404, { code: 'not-found' }, 'application/problem+json')).toEqual([]);
    expect(get('/text', 200, 'a 1', 'text/plain; version=0.0.4')).toEqual([]);
    // A literal path wins over a template.
    expect(contract.operationOf('GET', '/things/special')).toBe('GET /things/special');
    expect(get('/things/special', 204, '', '')).toEqual([]);
  });

  it('reports each kind of break, naming the operation and status', () => {
    expect(get(`/things/${ID}`, 200, { id: ID, extra: true })).toEqual(['GET /things/{id} → 200: body must NOT have additional properties {"additionalProperty":"extra"}']);
    expect(get(`/things/${ID}`, 200, { id: 'nope' })).toEqual(['GET /things/{id} → 200: body/id must match format "uuid" {"format":"uuid"}']);
    expect(get(`/things/${ID}`, 200, { n: 1.5, id: ID })).toEqual(['GET /things/{id} → 200: body/n must be integer {"type":"integer"}']);
    expect(get(`/things/${ID}`, 500, {})).toEqual(['GET /things/{id} → 500: status not documented (documented: 200, 4XX)']);
    expect(get(`/things/${ID}`, 200, { id: ID }, 'text/html')).toEqual(['GET /things/{id} → 200: media type "text/html" not documented (documented: application/json)']);
    expect(get(`/things/${ID}`, 200, '{not json')).toEqual(['GET /things/{id} → 200: application/json body is not JSON']);
    expect(get('/things/special', 204, 'surprise', 'text/plain')).toEqual(['GET /things/special → 204: a body, where the document describes none']);
  });

  it('has no contract for what the document does not describe', () => {
    expect(contract.check({ method: 'POST', target: `/things/${ID}`, status: 405, body: '' })).toBeUndefined();
    expect(contract.check({ method: 'GET', target: '/elsewhere', status: 404, body: '' })).toBeUndefined();
  });
});
