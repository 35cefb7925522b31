// Runs aedes-persistence's conformance suite (abstract-suite.node.ts, node:test) against
// the embedded store in a child process, with both sync modes and two commit windows.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import test from 'ava'

const SUITE = fileURLToPath(new URL('./abstract-suite.node.ts', import.meta.url))

function runSuite (sync: 'full' | 'normal', commitWindow: number): Promise<{ code: number | null, output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test-reporter=tap', SUITE], {
      env: { ...process.env, STORE_SYNC: sync, STORE_COMMIT_WINDOW: String(commitWindow) },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (chunk) => { output += chunk })
    child.stderr.on('data', (chunk) => { output += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

// sync full with the stock commit window (2 ms), normal committing at the end of each turn
for (const [sync, commitWindow] of [['full', 2], ['normal', 0]] as const) {
  test(`aedes-persistence 11 abstract suite passes on the embedded store (sync = ${sync}, commit window ${commitWindow} ms)`, async (t) => {
    const { code, output } = await runSuite(sync, commitWindow)
    const count = (name: string) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(output)?.[1] ?? NaN)
    const failures = output.split('\n').filter((line) => line.startsWith('not ok')).join('\n')
    t.is(code, 0, failures || output.slice(-2000))
    t.is(count('fail'), 0)
    // abstract.js of aedes-persistence 11.0.0 has 50 top-level tests; all of them must run
    t.true(count('pass') >= 50, `passed: ${count('pass')}`)
    t.is(count('pass'), count('tests'))
  })
}
