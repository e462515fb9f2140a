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

/** Writes an answer as JSON (problems carry their own `content-type`). */
export function sendAnswer(res: Response, answer: Answer, extraHeaders: Record<string, string> = {}): void {
  res.status(answer.status);
  res.set({ 'content-type': 'application/json; charset=utf-8', ...answer.headers, ...extraHeaders });
  res.send(JSON.stringify(answer.body));
}
