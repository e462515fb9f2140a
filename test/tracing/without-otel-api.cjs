// Preloaded by test/tracing/no-op.test.ts: this process runs as if @opentelemetry/api were not installed.
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === '@opentelemetry/api') {
    const e = new Error("Cannot find module '@opentelemetry/api'");
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  }
  return resolve.call(this, request, ...rest);
};
