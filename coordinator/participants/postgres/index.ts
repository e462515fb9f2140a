// The PostgreSQL branch mechanics live in the participant SDK, which also
// runs them inside participant services; the coordinator's direct adapter is
// the same class. This path stays for existing imports.
export * from '../../../participant-sdk/src/postgres';
