// The install test (`npm test` runs it once, under the machine's Node): the package as a user gets
// it. `npm pack` the main package and this machine's platform package (npm/<platform>/ with the
// built addon), install both tarballs into fresh projects with no cargo or rustc on PATH (npm, and
// `bun add`), then serve and fetch over HTTP/3 (scripts/dist/smoke.mjs) under Node 20, 22 and 24,
// Bun and Deno. Our own packages come from the tarballs; nothing is fetched for them.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { localPlatform } from './platforms.mjs'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const bin = (...p) => path.join(root, 'node_modules', ...p)
const platform = localPlatform()
const addonName = `napi-h3.${platform}.node`
let tmp, mainTgz, platformTgz

// PATH without any folder that holds cargo or rustc: the installs must not need Rust.
const noRustPath = (process.env.PATH || '').split(path.delimiter)
  .filter((d) => d && !['cargo', 'rustc'].some((t) => fs.existsSync(path.join(d, t))))
  .join(path.delimiter)
const env = { ...process.env, PATH: noRustPath, npm_config_audit: 'false', npm_config_fund: 'false', NO_COLOR: '1' }
delete env.CARGO_TARGET_DIR

function sh (cmd, args, cwd, timeout = 180000) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout })
  const out = `${r.stdout || ''}${r.stderr || ''}`
  assert.equal(r.error, undefined, `${cmd} ${args.join(' ')}: ${r.error?.message}`)
  assert.equal(r.status, 0, `${path.basename(cmd)} ${args.join(' ')} exited ${r.status}:\n${out}`)
  return { out, stdout: r.stdout }
}
const packInfo = (dir) => JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', tmp], dir).stdout)[0]

function project (name, manifest = {}) {
  const dir = path.join(tmp, name)
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module', ...manifest }, null, 2))
  fs.copyFileSync(path.join(root, 'scripts', 'dist', 'smoke.mjs'), path.join(dir, 'smoke.mjs'))
  return dir
}

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'napi-h3-install-'))
  assert.ok(fs.existsSync(path.join(root, addonName)), `${addonName} is not built`)
  assert.ok(!fs.existsSync(path.join(noRustPath.split(path.delimiter)[0] || '/nonexistent', 'cargo')))
})
after(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }) })

test('npm pack: the main package ships no addon and lists the platform packages', () => {
  const info = packInfo(root)
  mainTgz = path.join(tmp, info.filename)
  const files = info.files.map((f) => f.path)
  assert.equal(JSON.parse(sh('tar', ['-xOzf', mainTgz, 'package/package.json'], tmp).stdout).scripts.prepare, undefined)
  assert.ok(files.includes('binding.js') && files.includes('index.d.ts') && files.includes('LICENSE'), files.join(' '))
  assert.deepEqual(files.filter((f) => f.endsWith('.node')), [])
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  assert.ok(manifest.optionalDependencies[`napi-h3-${platform}`], `no optionalDependency napi-h3-${platform}`)
})

test(`npm pack: napi-h3-${platform} carries the addon`, () => {
  const src = path.join(tmp, `pkg-${platform}`)
  fs.cpSync(path.join(root, 'npm', platform), src, { recursive: true })
  fs.copyFileSync(path.join(root, addonName), path.join(src, addonName))
  const info = packInfo(src)
  platformTgz = path.join(tmp, info.filename)
  assert.ok(info.files.some((f) => f.path === addonName), info.files.map((f) => f.path).join(' '))
})

test('npm install of the tarballs, offline, runs under Node 20, 22, 24 and Deno', { timeout: 600000 }, () => {
  const dir = project('npm-app')
  const { out } = sh('npm', ['install', '--offline', '--no-audit', '--no-fund', mainTgz, platformTgz], dir)
  assert.doesNotMatch(out, /npm (warn|error).*(prepare|install-scripts)/i, 'npm warned about a lifecycle script')
  assert.ok(fs.existsSync(path.join(dir, 'node_modules', `napi-h3-${platform}`, addonName)))
  assert.ok(!fs.readdirSync(path.join(dir, 'node_modules', 'napi-h3')).some((f) => f.endsWith('.node')))
  const nodes = [process.execPath, bin('node22', 'bin', 'node'), bin('node24', 'bin', 'node')].filter((b) => fs.existsSync(b))
  assert.equal(nodes.length, 3, 'node22 or node24 dev dependency missing')
  for (const node of nodes) assert.match(sh(node, ['smoke.mjs'], dir).out, /^smoke ok node v\d+/m)
  // Deno: deno.json with a manual node_modules (npm installed it), bare "napi-h3" import, and the
  // permissions the README names (read: the package and /usr/bin/ldd; env: the loader's
  // NAPI_RS_* variables; ffi: loading the addon).
  fs.writeFileSync(path.join(dir, 'deno.json'), JSON.stringify({ nodeModulesDir: 'manual' }))
  assert.match(sh(bin('deno', 'deno'), ['run', '--no-prompt', '--allow-read', '--allow-env', '--allow-ffi', 'smoke.mjs'], dir).out, /^smoke ok deno /m)
})

test('bun add of the tarballs runs under Bun', { timeout: 300000 }, () => {
  const dir = project('bun-app')
  sh(bin('bun', 'bin', 'bun.exe'), ['add', mainTgz, platformTgz], dir)
  assert.ok(fs.existsSync(path.join(dir, 'node_modules', `napi-h3-${platform}`, addonName)))
  assert.match(sh(bin('bun', 'bin', 'bun.exe'), ['smoke.mjs'], dir).out, /^smoke ok bun /m)
})
