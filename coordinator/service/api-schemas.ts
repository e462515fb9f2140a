import { z } from 'zod';
import { carriedRegistrationSchema } from '../../participant-sdk/src';
import { MAX_CARRIED_BRANCHES } from '../engine/carried-transaction';
import { LIST_STATES, MAX_LIST_LIMIT } from '../engine/transaction-listing';

/**
 * Messages of the coordinator API that only the coordinator reads (the
 * shared ones are in participant-sdk/src/wire.ts). Used to validate
 * requests and to generate the OpenAPI document.
 */

/** `metadata` of a begin is written to the log: it is kept shallow. */
export const MAX_METADATA_DEPTH = 8;

export const listQuerySchema = z
  .object({
    state: z.enum(LIST_STATES).optional(),
    limit: z
      .string()
      .regex(/^[0-9]{1,5}$/, `must be an integer from 1 to ${MAX_LIST_LIMIT}`)
      .transform(Number)
      .pipe(z.number().min(1, 'must be >= 1').max(MAX_LIST_LIMIT, `must be <= ${MAX_LIST_LIMIT}`))
      .optional(),
    offset: z.string().regex(/^[0-9]{1,9}$/, 'must be an integer >= 0').transform(Number).optional(),
    participant: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
    idPrefix: z.string().regex(/^[0-9a-fA-F-]{1,36}$/, 'must be the start of a transaction id (hex digits and dashes)').optional(),
    minAgeMs: z.string().regex(/^[0-9]{1,12}$/, 'must be a number of milliseconds').transform(Number).optional(),
  })
  .strict();

/** The signed registrations a carried commit or abort carries (docs/protocol.md). */
const carriedRegistrations = z
  .array(carriedRegistrationSchema)
  .min(1, 'must hold at least one registration')
  .max(MAX_CARRIED_BRANCHES, `must hold at most ${MAX_CARRIED_BRANCHES} registrations`)
  .optional();

/** A commit's body is optional; without it (or `answerAt` absent) the answer waits for phase 2, up to the coordinator's commitWaitMs. */
export const commitRequestSchema = z
  .object({
    answerAt: z
      .enum(['completed', 'decided'])
      .optional()
      .describe('When to answer: `completed` (default) once every branch acknowledged phase 2, or 202 after commitWaitMs; `decided` as soon as the commit decision is durable (202, phaseTwoPending: true, unless already completed), phase 2 going on in the background.'),
    registrations: carriedRegistrations.describe(
      'Carried registration (only where GET /v1/capabilities offers it): the signed registrations the services answered; the id is one the client minted, with no begin.',
    ),
  })
  .strict();

export const abortRequestSchema = z
  .object({
    /** Recorded as the abort's reason (cause `application`). */
    reason: z.string().max(1000, 'must be at most 1000 characters').optional(),
    registrations: carriedRegistrations.describe(
      'Carried abort (only where GET /v1/capabilities offers carried registration): the registrations the services answered, exactly those a commit would carry. An id the coordinator has not recorded (minted within the carried window) is recorded with them and aborted, and each branch is rolled back now instead of at its timeout.',
    ),
  })
  .strict();

export const commitAnswerSchema = z.object({
  id: z.string(),
  state: z.literal('committed'),
  /** True (with HTTP 202) when the decision is durable but some branch has not acknowledged phase 2 yet; it is retried. */
  phaseTwoPending: z.boolean(),
});

export const abortAnswerSchema = z.object({ id: z.string(), state: z.literal('aborted') });

export const healthAnswerSchema = z.object({ status: z.literal('ok') });
export const readyAnswerSchema = z.object({ ready: z.boolean() });
