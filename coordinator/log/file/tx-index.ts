// Shared with the PostgreSQL and Redis stores (they fold records the same way); this path stays for existing imports.
export * from '../tx-index';
