// Shared with the PostgreSQL and Redis stores; this path stays for existing imports.
export * from '../record-shape';
