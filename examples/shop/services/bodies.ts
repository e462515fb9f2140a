import { z } from 'zod';
import type { BranchQueryable } from '../../../participant-sdk/src';

/**
 * What the client sends each service (each call also carries the
 * `twopc-transaction` header), validated by the service before its work runs.
 * Every call names the order by the id the client gave it: the three
 * databases key their rows by it.
 */
const id = z.number().int().min(1).max(1_000_000);
const quantity = z.number().int().min(1).max(1_000_000);

/** One to twenty lines, each naming a different product. */
function lines<T extends { product: number }>(line: z.ZodType<T>) {
  return z
    .array(line)
    .min(1)
    .max(20)
    .refine((ls) => new Set(ls.map((l) => l.product)).size === ls.length, 'each product at most once');
}

/** `POST /orders` at the orders service: the order and its lines, at the prices the client was quoted. */
export const orderBody = z
  .object({
    orderId: z.uuid(),
    customer: id,
    lines: lines(z.object({ product: id, quantity, unitPrice: z.number().int().min(0).max(1_000_000) }).strict()),
  })
  .strict();
export type OrderBody = z.output<typeof orderBody>;

/** `POST /reservations` at the inventory service: the goods to take out of stock for the order. */
export const reservationBody = z
  .object({
    orderId: z.uuid(),
    lines: lines(z.object({ product: id, quantity }).strict()),
  })
  .strict();
export type ReservationBody = z.output<typeof reservationBody>;

/** `POST /charges` at the payments service: what the customer pays for the order. */
export const chargeBody = z
  .object({
    orderId: z.uuid(),
    customer: id,
    amount: z.number().int().min(1).max(1_000_000_000),
  })
  .strict();
export type ChargeBody = z.output<typeof chargeBody>;

/** The orders service's work (services/orders-store.ts, written with Prisma): records the order, answers its total. */
export type CreateOrder = (branch: BranchQueryable, order: OrderBody) => Promise<{ total: number }>;
