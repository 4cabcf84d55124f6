import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import path from 'node:path'
import { root } from './helpers.mjs'

const require = createRequire(import.meta.url)
const native = require(path.join(root, 'binding.js'))
const batch = require(path.join(root, 'lib', 'batch.js'))

// The request and datagram batches cross the napi edge as flat arrays; each side defines the
// layout once (src/napi/batch.rs, lib/batch.js). They must name the same fields in the same order.
describe('batch layout', () => {
  test('request batch: Rust and JS name the same fields in the same order', () => {
    assert.deepEqual(native.requestBatchFields(), [...batch.REQUEST_FIELDS])
    // The two lists (spread behind their lengths) come last, after the fixed cells.
    assert.deepEqual(native.requestBatchFields().slice(batch.REQUEST_FIXED), ['headers', 'params'])
  })
  test('datagram batch: Rust and JS name the same fields in the same order', () => {
    assert.deepEqual(native.datagramBatchFields(), [...batch.DATAGRAM_FIELDS])
    assert.equal(batch.DATAGRAM_STRIDE, native.datagramBatchFields().length)
  })
})

describe('client head batch layout', () => {
  test('response heads: Rust and JS name the same fields in the same order', () => {
    const heads = require(path.join(root, 'lib', 'client-heads.js'))
    assert.deepEqual(native.clientHeadFields(), [...heads.HEAD_FIELDS])
  })
})
