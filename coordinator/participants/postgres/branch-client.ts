// Moved to the participant SDK; this path stays for existing imports.
export * from '../../../participant-sdk/src/postgres/branch-client';
