import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

/** The pid in `file` if that process is alive, else undefined. */
export function livePid (file: string): number | undefined {
  let pid: number
  try {
    pid = Number(readFileSync(file, 'utf8').trim())
  } catch {
    return undefined
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  try {
    process.kill(pid, 0)
    return pid
  } catch (err) {
    // EPERM: alive, but someone else's
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined
  }
}

export function writePidFile (file: string): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, `${process.pid}\n`)
}

export function removePidFile (file: string): void {
  try {
    if (Number(readFileSync(file, 'utf8').trim()) === process.pid) rmSync(file)
  } catch {}
}

/** Resolves true once `pid` is gone, false if it is still alive after `ms`. */
export async function waitForExit (pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0)
    } catch {
      return true
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}
