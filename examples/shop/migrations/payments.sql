-- The payments service's database (its work is written with Drizzle).
create table if not exists customers (
  id int primary key,
  -- A charge of more than is left fails this, and with it the order everywhere.
  balance int not null constraint balance_never_negative check (balance >= 0)
);

-- One charge per order, keyed by the order's id (the final check matches it with the order's total).
create table if not exists charges (
  order_id uuid primary key,
  customer_id int not null references customers (id),
  amount int not null check (amount > 0)
);
