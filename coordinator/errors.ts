// Moved to the participant SDK (the SDK never imports the coordinator); one class, shared by both.
export * from '../participant-sdk/src/errors';
