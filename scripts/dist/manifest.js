'use strict'
// `prepack` / `postpack`: the published package.json carries no `prepare` script. In a clone,
// `npm install` runs `prepare` (scripts/ensure-built.js builds the addon); an installed package
// ships its addon prebuilt (the npm/<platform>/ packages), and npm 11 warns on every install of a
// package whose manifest names `prepare`. `strip` saves package.json and removes the script;
// `restore` puts the saved file back (also run first by `strip`, after an interrupted pack).
const fs = require('node:fs')
const path = require('node:path')

const file = path.join(__dirname, '..', '..', 'package.json')
const saved = file + '.prepack'

function restore () {
  if (fs.existsSync(saved)) fs.renameSync(saved, file)
}

function strip () {
  restore()
  const text = fs.readFileSync(file, 'utf8')
  const manifest = JSON.parse(text)
  if (!manifest.scripts?.prepare) return
  fs.writeFileSync(saved, text)
  delete manifest.scripts.prepare
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n')
}

const verb = process.argv[2]
if (verb === 'strip') strip()
else if (verb === 'restore') restore()
else {
  console.error('usage: node scripts/dist/manifest.js strip|restore')
  process.exit(2)
}
