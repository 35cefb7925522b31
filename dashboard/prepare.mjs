// `npm install` / `npm ci` run this (the "prepare" script): it builds the dashboard, unless the
// build tools are not installed (a production install with --omit=dev), where it says so and
// lets the install finish. The broker then answers `/` with a page that says how to build it.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
try {
  require.resolve('vite/package.json')
} catch {
  console.log('tapmq: dashboard not built (vite is not installed: dev dependencies were omitted); run `npm run build` where they are')
  process.exit(0)
}
const npm = process.env.npm_execpath
const result = npm
  ? spawnSync(process.execPath, [npm, 'run', 'build'], { stdio: 'inherit' })
  : spawnSync('npm', ['run', 'build'], { stdio: 'inherit' })
process.exit(result.status ?? 1)
