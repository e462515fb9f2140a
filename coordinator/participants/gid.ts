// Moved to the participant SDK (the SDK never imports the coordinator).
export * from '../../participant-sdk/src/gid';
