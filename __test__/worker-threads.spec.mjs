import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import path from 'node:path'
import { root } from './helpers.mjs'

const fixture = (name) => path.join(root, '__test__', 'workers', name)

// Issue #10: worker pools load the addon in workers first; every server and client a worker made
// is force-stopped, and its socket released, when the worker goes away.
describe('worker threads', () => {
  test('loading the addon first in workers, then on the main thread, does not crash', async () => {
    const out = await new Promise((resolve) => {
      execFile(process.execPath, [fixture('load-in-workers.cjs')], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr }))
    })
    assert.equal(out.code, 0, `exit ${out.code}\n${out.stderr}`)
    assert.match(out.stdout, /^ok$/m)
  })
})
