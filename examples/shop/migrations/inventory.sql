-- The inventory service's database (its work is written with Kysely).
create table if not exists products (
  id int primary key,
  name text not null,
  price int not null,
  -- A reservation of more than is left fails this, and with it the order everywhere.
  stock int not null constraint stock_never_negative check (stock >= 0)
);

-- What each order took, keyed by the order's id (the final check matches it with the order's lines).
create table if not exists reservations (
  order_id uuid not null,
  product_id int not null references products (id),
  quantity int not null check (quantity > 0),
  primary key (order_id, product_id)
);
