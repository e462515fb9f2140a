/**
 * The shop's price list, which every part agrees on: the inventory service
 * seeds its products from it, the client prices its orders from it.
 * Prices are whole credits.
 */
export interface Product {
  id: number;
  name: string;
  price: number;
}

/** What sells: each runs out of stock sooner or later, depending on how much there is. */
export const GOODS: readonly Product[] = [
  { id: 1, name: 'coffee mug', price: 12 },
  { id: 2, name: 't-shirt', price: 25 },
  { id: 3, name: 'notebook', price: 8 },
  { id: 4, name: 'tote bag', price: 15 },
  { id: 5, name: 'poster', price: 20 },
  { id: 6, name: 'sticker pack', price: 4 },
  { id: 7, name: 'hoodie', price: 45 },
  { id: 8, name: 'water bottle', price: 18 },
];

/**
 * The showroom piece: it costs more than any customer ever has (balances are
 * at most {@link MAX_BALANCE}), so every order of it is refused by the
 * payments service's `balance >= 0` and aborts everywhere; its one unit is
 * reserved and given back again and again, never sold.
 */
export const PIANO: Product = { id: 9, name: 'grand piano', price: 250_000 };
export const PIANO_STOCK = 1;
export const MAX_BALANCE = PIANO.price - 1;

export const CATALOG: readonly Product[] = [...GOODS, PIANO];

export function productById(id: number): Product {
  const product = CATALOG.find((p) => p.id === id);
  if (!product) throw new Error(`no product ${id} in the catalog`);
  return product;
}

/** How many of each product the inventory opens with. */
export function initialStock(product: Product, stock: number): number {
  return product.id === PIANO.id ? PIANO_STOCK : stock;
}
