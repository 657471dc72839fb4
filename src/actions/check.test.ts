import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CheckItem, checkExitCode } from './check.js';

const ok: CheckItem = { name: 'ssh key', status: 'ok', detail: 'fine' };
const hostFailure: CheckItem = { name: 'ssh key', status: 'fail', detail: 'missing' };
const configFailure: CheckItem = {
  name: 'schedule',
  status: 'fail',
  detail: 'misses the deadline',
  configuration: true,
};

test("check exits 78 when the configuration's own item fails, 1 for the host's failures, 0 otherwise", () => {
  assert.equal(checkExitCode([ok, { ...configFailure, status: 'ok' }]), 0);
  assert.equal(checkExitCode([ok, { ...configFailure, status: 'warn' }]), 0);
  assert.equal(checkExitCode([ok, hostFailure]), 1);
  assert.equal(checkExitCode([ok, configFailure]), 78);
  assert.equal(checkExitCode([hostFailure, configFailure]), 78);
});
