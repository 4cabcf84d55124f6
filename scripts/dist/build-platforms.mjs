// `npm run build:platforms [-- name…]`: builds the addon for every Linux platform napi-h3 ships
// (x64 and arm64, glibc and musl) into npm/<platform>/, on one Linux x64 machine.
//
// Cross-compiling: `napi build -x` (cargo-zigbuild, with zig as the C compiler and linker for ring's
// C and assembly and for the final link). zig and cargo-zigbuild come from PyPI (`ziglang`,
// `cargo-zigbuild`, pinned below) in a venv of their own (.venv-cross/); the Rust standard library
// for each target from `rustup target add`. glibc builds link against glibc 2.28 (the floor of
// Node 20's own Linux binaries); musl builds link musl dynamically (`-crt-static`), as a Node-API
// addon loaded by a musl Node or Bun must.
// macOS and Windows are not built: zig cannot link for them without their SDKs, which no registry
// we use ships.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { platforms } from './platforms.mjs'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const venv = path.join(root, '.venv-cross')
const pins = ['ziglang==0.17.1', 'cargo-zigbuild==0.24.1']
const glibc = '2.28'

function sh (cmd, args, opts = {}) {
  console.log(`$ ${[cmd, ...args].join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts })
  if (r.status !== 0) {
    console.error(`build-platforms: ${cmd} failed (${r.error?.message ?? `exit ${r.status}`})`)
    process.exit(1)
  }
}

// zig and cargo-zigbuild in .venv-cross/bin, with a `zig` shim there (the wheel runs as
// `python -m ziglang`; napi's -x wants `zig` on PATH).
function ensureZig () {
  const py = path.join(venv, 'bin', 'python')
  if (!fs.existsSync(py)) sh('python3', ['-m', 'venv', venv])
  sh(py, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', ...pins])
  const shim = path.join(venv, 'bin', 'zig')
  fs.writeFileSync(shim, `#!/bin/sh\nexec "${py}" -m ziglang "$@"\n`, { mode: 0o755 })
}

const wanted = process.argv.slice(2)
const chosen = platforms.filter((p) => wanted.length === 0 || wanted.includes(p.name))
if (chosen.length === 0) {
  console.error(`build-platforms: no platform named ${wanted.join(' ')}; known: ${platforms.map((p) => p.name).join(' ')}`)
  process.exit(2)
}
ensureZig()
sh('rustup', ['target', 'add', ...chosen.map((p) => p.triple)])

const env = { ...process.env, PATH: `${path.join(venv, 'bin')}${path.delimiter}${process.env.PATH}` }
for (const p of chosen) {
  const out = path.join('npm', p.name)
  // cargo-zigbuild reads a glibc version from the target's suffix (`…-gnu.2.28`).
  const target = p.libc === 'glibc' ? `${p.triple}.${glibc}` : p.triple
  const rustflags = p.libc === 'musl' ? { [`CARGO_TARGET_${p.triple.toUpperCase().replace(/-/g, '_')}_RUSTFLAGS`]: '-C target-feature=-crt-static' } : {}
  const t0 = Date.now()
  sh(path.join(root, 'node_modules', '.bin', 'napi'), ['build', '--platform', '--release', '-x', '--target', target,
    '--output-dir', out, '--no-js', '--dts', 'binding.d.ts'], { env: { ...env, ...rustflags } })
  fs.rmSync(path.join(out, 'binding.d.ts'), { force: true }) // the root's binding.d.ts is the one shipped
  const addon = path.join(out, `napi-h3.${p.name}.node`)
  if (!fs.existsSync(addon)) {
    console.error(`build-platforms: ${addon} was not produced`)
    process.exit(1)
  }
  console.log(`build-platforms: ${addon} (${(fs.statSync(addon).size / 1048576).toFixed(1)} MiB, ${((Date.now() - t0) / 1000).toFixed(0)} s)`)
}
