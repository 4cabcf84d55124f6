'use strict'
// Checks index.js and lib/*.js for require cycles (relative requires only; node: modules and
// packages are leaves). Prints each cycle found and exits 1; exits 0 when there are none.
// Usage: node scripts/requirecycles.js [root]
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(process.argv[2] || path.join(__dirname, '..'))
const libDir = path.join(root, 'lib')
const files = [path.join(root, 'index.js')]
if (fs.existsSync(libDir)) {
  for (const f of fs.readdirSync(libDir).sort()) if (f.endsWith('.js')) files.push(path.join(libDir, f))
}

/** The files `file` requires with a relative path, resolved the way Node resolves them. */
function requires (file) {
  const src = fs.readFileSync(file, 'utf8')
  const out = []
  for (const m of src.matchAll(/\brequire\s*\(\s*(['"])(\.{1,2}\/[^'"]*)\1\s*\)/g)) {
    try {
      out.push(require.resolve(path.resolve(path.dirname(file), m[2])))
    } catch {
      console.error(`${path.relative(root, file)}: cannot resolve ${m[2]}`)
      process.exitCode = 1
    }
  }
  return out
}

const graph = new Map()
for (const f of files) graph.set(f, requires(f))

// Depth-first search; a back edge to a file on the current path closes a cycle.
const cycles = []
const state = new Map() // file -> 'active' | 'done'
const stack = []
function visit (f) {
  state.set(f, 'active')
  stack.push(f)
  for (const dep of graph.get(f) || []) {
    if (!graph.has(dep)) continue // outside index.js + lib/ (binding.js, packages)
    if (state.get(dep) === 'active') cycles.push([...stack.slice(stack.indexOf(dep)), dep])
    else if (!state.has(dep)) visit(dep)
  }
  stack.pop()
  state.set(f, 'done')
}
for (const f of files) if (!state.has(f)) visit(f)

const rel = (f) => path.relative(root, f)
for (const c of cycles) console.error(`require cycle: ${c.map(rel).join(' -> ')}`)
if (cycles.length) process.exitCode = 1
else if (!process.exitCode) console.log(`no require cycles in ${files.length} files (${files.map(rel).join(', ')})`)
