-- The orders service's database (its work is written with Prisma: services/orders.prisma maps these tables).
create table if not exists orders (
  id uuid primary key,
  customer_id int not null,
  total int not null check (total >= 0)
);

create table if not exists order_lines (
  order_id uuid not null references orders (id),
  product_id int not null,
  quantity int not null check (quantity > 0),
  unit_price int not null check (unit_price >= 0),
  primary key (order_id, product_id)
);
