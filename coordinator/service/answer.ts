import type { ServerResponse } from 'node:http';
import type { Response } from 'express';

/**
 * What a handler answers: status, JSON body and extra headers. Handlers
 * return answers instead of writing to the response, so an Idempotency-Key
 * can store one and replay it byte for byte.
 */
export interface Answer {
  status: number;
  body: unknown;
  headers?: Readonly<Record<string, string>>;
}

export const ok = (body: unknown): Answer => ({ status: 200, body });
export const created = (body: unknown): Answer => ({ status: 201, body });

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Writes an answer as JSON (problems carry their own `content-type`). */
export function sendAnswer(res: Response, answer: Answer, extraHeaders: Record<string, string> = {}): void {
  res.status(answer.status);
  res.set({ 'content-type': JSON_CONTENT_TYPE, ...answer.headers, ...extraHeaders });
  res.send(JSON.stringify(answer.body));
}

/**
 * `sendAnswer` on a plain node response (the hot path, which bypasses
 * express): the same status, headers and bytes that express's `res.send`
 * writes for a JSON string with ETags off (`content-type` as given, which
 * already names its charset, and `content-length`).
 */
export function writeAnswer(res: ServerResponse, answer: Answer, extraHeaders?: Record<string, string>): void {
  const text = JSON.stringify(answer.body);
  const headers: Record<string, string | number> = { 'content-type': JSON_CONTENT_TYPE, ...answer.headers, ...extraHeaders };
  headers['content-length'] = Buffer.byteLength(text);
  res.writeHead(answer.status, headers);
  res.end(text);
}
