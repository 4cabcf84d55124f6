// The published types compile for a Node-only TypeScript project: `tsc --strict` with only
// @types/node (no DOM lib), skipLibCheck off, nodenext resolution through the package's exports
// map (CommonJS `.ts` and ESM `.mts` consumers). See __test__/types/.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
// Under Bun, run the compiler with Node (the first `node` on PATH).
const node = typeof globalThis.Bun !== 'undefined' ? 'node' : process.execPath

test('index.d.ts type-checks under tsc --strict with only @types/node', { timeout: 120000 }, () => {
  assert.ok(existsSync(tsc), 'typescript is missing: run `npm install`')
  const r = spawnSync(node, [tsc, '-p', path.join('__test__', 'types'), '--pretty', 'false'], { cwd: root, encoding: 'utf8', timeout: 110000 })
  assert.equal(r.error, undefined, `could not run tsc: ${r.error?.message}`)
  const out = (r.stdout + r.stderr).trim()
  assert.equal(out, '', `tsc reported:\n${out}`)
  assert.equal(r.status, 0)
})
