// The published types compile for TypeScript consumers: `tsc --strict`, skipLibCheck off, over
// the files in __test__/types/ (CommonJS `.ts`, ESM `.mts`, and every-type.ts, which names each
// export), with `nodenext` and with `bundler` resolution, for a Node-only project (only
// @types/node@20, no DOM lib) and for a Bun project (@types/bun). See __test__/types/.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const typesDir = path.join(root, '__test__', 'types')
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
// Under Bun or Deno, run the compiler with Node (the first `node` on PATH).
const node = globalThis.Bun || globalThis.Deno ? 'node' : process.execPath

function compile (project) {
  const r = spawnSync(node, [tsc, '-p', project, '--pretty', 'false'], { cwd: root, encoding: 'utf8', timeout: 110000 })
  assert.equal(r.error, undefined, `could not run tsc: ${r.error?.message}`)
  const out = (r.stdout + r.stderr).trim()
  assert.equal(out, '', `tsc reported:\n${out}`)
  assert.equal(r.status, 0)
}

// A scratch Bun project: node_modules holds napi-h3 (this checkout), @types/bun, bun-types and
// the @types/node and undici-types that bun-types resolves (package.json overrides give it a
// current @types/node; the repo's own @types/node@20 stays out of sight).
function bunProject () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'napi-h3-types-bun-'))
  const mods = path.join(dir, 'node_modules')
  fs.mkdirSync(path.join(mods, '@types'), { recursive: true })
  const fromBunTypes = createRequire(path.join(root, 'node_modules', 'bun-types', 'package.json'))
  const nodeTypes = path.dirname(fromBunTypes.resolve('@types/node/package.json'))
  const undici = path.dirname(createRequire(path.join(nodeTypes, 'package.json')).resolve('undici-types/package.json'))
  const links = {
    'napi-h3': root,
    '@types/bun': path.join(root, 'node_modules', '@types', 'bun'),
    'bun-types': path.join(root, 'node_modules', 'bun-types'),
    '@types/node': nodeTypes,
    'undici-types': undici
  }
  for (const [name, target] of Object.entries(links)) fs.symlinkSync(target, path.join(mods, name), 'dir')
  for (const f of fs.readdirSync(typesDir)) fs.copyFileSync(path.join(typesDir, f), path.join(dir, f))
  return dir
}

test('every export of index.d.ts is used by a file in __test__/types/', () => {
  const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
  const exported = [...dts.matchAll(/^export (?:declare )?(?:function|class|const|type|interface|enum) (\w+)/gm)].map((m) => m[1])
  assert.ok(exported.length > 20, `found only ${exported.length} exports`)
  const used = fs.readdirSync(typesDir).filter((f) => /\.m?ts$/.test(f)).map((f) => fs.readFileSync(path.join(typesDir, f), 'utf8')).join('\n')
  const unused = exported.filter((name) => !new RegExp(`\\b${name}\\b`).test(used))
  assert.deepEqual(unused, [], `exported but not type-checked by __test__/types/: ${unused.join(', ')}`)
})

for (const [name, config] of [['nodenext', 'tsconfig.json'], ['bundler', 'tsconfig.bundler.json']]) {
  test(`tsc --strict, only @types/node, ${name} resolution`, { timeout: 120000 }, () => {
    assert.ok(fs.existsSync(tsc), 'typescript is missing: run `npm install`')
    compile(path.join(typesDir, config))
  })
}

for (const [name, config] of [['nodenext', 'tsconfig.bun.json'], ['bundler', 'tsconfig.bun-bundler.json']]) {
  test(`tsc --strict, @types/bun, ${name} resolution`, { timeout: 120000 }, () => {
    const dir = bunProject()
    try {
      compile(path.join(dir, config))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
}
