import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

/** One answer a test received, as it came over the wire. */
export interface Exchange {
  method: string;
  /** The request target: path and query, as sent. */
  target: string;
  status: number;
  /** The answer's Content-Type header, if any. */
  contentType?: string;
  /** The answer's body as text ('' when none). */
  body: string;
}

interface Operation {
  key: string;
  pattern: RegExp;
  /** Literal path segments: a literal path wins over a templated one (OpenAPI 3.1, Paths Object). */
  literals: number;
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
  pointer: string;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const DOC_ID = 'openapi.json';

/**
 * Checks answers against an OpenAPI 3.1 document: the status must be one the
 * operation documents (exact, `4XX`-style range, or `default`), the media
 * type one it lists, and the body must validate against that media type's
 * schema. The schemas are validated by Ajv (JSON Schema 2020-12, the dialect
 * of OpenAPI 3.1) over the document itself, so `$ref`s resolve as the
 * document says; this class only finds the schema an answer must meet.
 * Requests to paths or methods the document does not describe have no
 * contract: `check` answers undefined for them.
 *
 * @example
 * const contract = new OpenApiContract(await (await fetch(`${base}/openapi.json`)).json());
 * contract.check({ method: 'GET', target: '/v1/transactions', status: 200, contentType: 'application/json', body }); // [] when it holds
 */
export class OpenApiContract {
  private readonly ajv = new Ajv2020({ allErrors: true, strict: false });
  private readonly operations: Operation[] = [];
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(document: { paths?: Record<string, Record<string, unknown>> }) {
    addFormats(this.ajv);
    this.ajv.addSchema(document, DOC_ID);
    for (const [template, item] of Object.entries(document.paths ?? {})) {
      for (const method of METHODS) {
        const op = item[method] as { responses?: Operation['responses'] } | undefined;
        if (!op) continue;
        const segments = template.split('/');
        this.operations.push({
          key: `${method.toUpperCase()} ${template}`,
          pattern: new RegExp(`^${segments.map((s) => (/^\{[^}]+\}$/.test(s) ? '[^/]+' : escapeRegExp(s))).join('/')}$`),
          literals: segments.filter((s) => !s.startsWith('{')).length,
          responses: op.responses ?? {},
          pointer: `${DOC_ID}#/paths/${pointerPart(template)}/${method}/responses`,
        });
      }
    }
    this.operations.sort((a, b) => b.literals - a.literals);
  }

  /** The documented operation an exchange is an answer of (`GET /v1/transactions/{id}`), if any. */
  operationOf(method: string, target: string): string | undefined {
    return this.find(method, target)?.key;
  }

  /**
   * Violations of the contract by this answer ([] when it holds), or
   * undefined when no operation describes the request. Each names the
   * operation, the status and what is wrong (`body/transactions/0 must NOT
   * have additional properties {"additionalProperty":"reason"}`).
   */
  check(exchange: Exchange): string[] | undefined {
    const op = this.find(exchange.method, exchange.target);
    if (!op) return undefined;
    const where = `${op.key} → ${exchange.status}`;
    const statusKey = [String(exchange.status), `${String(exchange.status)[0]}XX`, 'default'].find((k) => op.responses[k] !== undefined);
    if (statusKey === undefined) return [`${where}: status not documented (documented: ${Object.keys(op.responses).join(', ')})`];
    const content = op.responses[statusKey].content;
    if (!content) return exchange.body === '' ? [] : [`${where}: a body, where the document describes none`];
    const mediaType = (exchange.contentType ?? '').split(';')[0].trim().toLowerCase();
    const documented = Object.keys(content).find((m) => mediaTypeMatches(m, mediaType));
    if (documented === undefined) return [`${where}: media type ${JSON.stringify(mediaType)} not documented (documented: ${Object.keys(content).join(', ')})`];
    if (content[documented].schema === undefined) return [];
    let value: unknown = exchange.body;
    if (isJson(mediaType)) {
      try {
        value = JSON.parse(exchange.body);
      } catch {
        return [`${where}: ${mediaType} body is not JSON`];
      }
    }
    const validate = this.validator(`${op.pointer}/${pointerPart(statusKey)}/content/${pointerPart(documented)}/schema`);
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => `${where}: body${e.instancePath} ${e.message}${e.params && Object.keys(e.params).length > 0 ? ` ${JSON.stringify(e.params)}` : ''}`);
  }

  private find(method: string, target: string): Operation | undefined {
    const path = target.split('?')[0].split('#')[0];
    const m = method.toUpperCase();
    return this.operations.find((op) => op.key.startsWith(`${m} `) && op.pattern.test(path));
  }

  private validator(ref: string): ValidateFunction {
    let validate = this.validators.get(ref);
    if (!validate) {
      validate = this.ajv.compile({ $ref: ref });
      this.validators.set(ref, validate);
    }
    return validate;
  }
}

/** A JSON Pointer token (RFC 6901); the document's keys (paths, statuses, media types) need no URI escaping beyond it. */
function pointerPart(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function mediaTypeMatches(documented: string, actual: string): boolean {
  const [type, subtype] = documented.toLowerCase().split('/');
  const [aType, aSubtype] = actual.split('/');
  return (type === '*' || type === aType) && (subtype === '*' || subtype === aSubtype);
}

function isJson(mediaType: string): boolean {
  return mediaType === 'application/json' || /^application\/[^/]+\+json$/.test(mediaType);
}
