import { Client } from 'pg';
import { PREPARED_HERE } from '../../coordinator/demo/account-sql';
import type { Service } from './client';

export interface StoredOrder {
  customer: number;
  total: number;
  /** product → quantity × unit price. */
  lines: Map<number, { quantity: number; unitPrice: number }>;
}

/** The three databases after the run, read directly (not through the services): committed rows only. */
export interface ShopState {
  orders: Map<string, StoredOrder>;
  products: Array<{ id: number; name: string; stock: number }>;
  /** order id → product → quantity reserved. */
  reservations: Map<string, Map<number, number>>;
  customers: Array<{ id: number; balance: number }>;
  /** order id → the charge. */
  charges: Map<string, { customer: number; amount: number }>;
  /** `service:gid` of every prepared transaction still in one of the databases. */
  prepared: string[];
}

// Every statement the check reads with, in one place.
const SQL = {
  orders: 'select id::text as id, customer_id as customer, total from orders',
  orderLines: 'select order_id::text as order_id, product_id as product, quantity, unit_price from order_lines',
  products: 'select id, name, stock from products order by id',
  reservations: 'select order_id::text as order_id, product_id as product, quantity from reservations',
  customers: 'select id, balance from customers order by id',
  charges: 'select order_id::text as order_id, customer_id as customer, amount from charges',
} as const;

export async function readShop(databases: Readonly<Record<Service, string>>): Promise<ShopState> {
  const [orders, inventory, payments] = await Promise.all([
    withClient(databases.orders, async (c) => {
      const stored = new Map<string, StoredOrder>();
      for (const r of (await c.query<{ id: string; customer: number; total: number }>(SQL.orders)).rows) stored.set(r.id, { customer: r.customer, total: r.total, lines: new Map() });
      for (const r of (await c.query<{ order_id: string; product: number; quantity: number; unit_price: number }>(SQL.orderLines)).rows) {
        // Every line has its order: the foreign key sees to it.
        stored.get(r.order_id)?.lines.set(r.product, { quantity: r.quantity, unitPrice: r.unit_price });
      }
      return { stored, prepared: await prepared(c, 'orders') };
    }),
    withClient(databases.inventory, async (c) => {
      const reservations = new Map<string, Map<number, number>>();
      for (const r of (await c.query<{ order_id: string; product: number; quantity: number }>(SQL.reservations)).rows) {
        reservations.set(r.order_id, (reservations.get(r.order_id) ?? new Map()).set(r.product, r.quantity));
      }
      return { products: (await c.query<{ id: number; name: string; stock: number }>(SQL.products)).rows, reservations, prepared: await prepared(c, 'inventory') };
    }),
    withClient(databases.payments, async (c) => {
      const charges = new Map<string, { customer: number; amount: number }>();
      for (const r of (await c.query<{ order_id: string; customer: number; amount: number }>(SQL.charges)).rows) charges.set(r.order_id, { customer: r.customer, amount: r.amount });
      return { customers: (await c.query<{ id: number; balance: number }>(SQL.customers)).rows, charges, prepared: await prepared(c, 'payments') };
    }),
  ]);
  return {
    orders: orders.stored,
    products: inventory.products,
    reservations: inventory.reservations,
    customers: payments.customers,
    charges: payments.charges,
    prepared: [...orders.prepared, ...inventory.prepared, ...payments.prepared],
  };
}

async function prepared(client: Client, service: Service): Promise<string[]> {
  return (await client.query<{ gid: string }>(PREPARED_HERE)).rows.map((r) => `${service}:${r.gid}`);
}

async function withClient<T>(connectionString: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
