// The dashboard's test kit: a built dashboard (built here when dist is missing or older than
// its sources), and Debian's Chromium driven by playwright-core.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import type { Teardown } from '../helpers/mqtt.ts'

export const CHROMIUM = '/usr/bin/chromium'
export const hasChromium = existsSync(CHROMIUM)

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const DASHBOARD = join(REPO, 'dashboard')
const BUILT = join(DASHBOARD, 'dist', 'index.html')
export const ARTIFACTS = join(REPO, 'test', 'artifacts')

function newestMtime (path: string): number {
  const info = statSync(path)
  if (!info.isDirectory()) return info.mtimeMs
  return Math.max(info.mtimeMs, ...readdirSync(path).map((name) => newestMtime(join(path, name))))
}

/**
 * Runs `npm run build` when dashboard/dist is missing or older than its sources. A file lock
 * keeps two test processes from building at once (ava runs files in parallel).
 */
export function ensureDashboardBuilt (): void {
  const sources = Math.max(newestMtime(join(DASHBOARD, 'src')), newestMtime(join(DASHBOARD, 'index.html')), newestMtime(join(DASHBOARD, 'vite.config.ts')))
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= sources) return
  const script = `test -f "${BUILT}" && [ "$(stat -c %Y "${BUILT}")" -ge ${Math.ceil(sources / 1000)} ] || npm run build --silent`
  const result = spawnSync('flock', [join(tmpdir(), 'tapmq-dashboard-build.lock'), 'sh', '-c', script], {
    cwd: REPO, encoding: 'utf8', timeout: 180_000
  })
  if (result.status !== 0) {
    throw new Error(`npm run build failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout}\n${result.stderr}`)
  }
}

/** Chromium with a fresh profile, closed (and its profile removed) at teardown. */
export async function openBrowser (t: Teardown): Promise<{ context: BrowserContext, page: Page }> {
  const profile = await mkdtemp(join(tmpdir(), 'tapmq-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    // playwright passes the profile as --user-data-dir
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1360, height: 900 },
    timeout: 30_000
  })
  t.teardown(async () => {
    await context.close()
    await rm(profile, { recursive: true, force: true })
  })
  context.setDefaultTimeout(10_000)
  const page = context.pages()[0] ?? await context.newPage()
  return { context, page }
}

/**
 * Polls the async `check` every 100 ms until it returns a truthy value; bounded. For state the
 * page or the API reach on their own schedule (the dashboard polls every 2 s).
 */
export async function eventually<T> (check: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`${what}: not true within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** A screenshot kept under test/artifacts/ (gitignored). */
export async function screenshot (page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const path = join(ARTIFACTS, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}
