// Worker threads do not inherit the tsx loader of the broker thread (neither `--import tsx`
// nor tsx's register() reaches them), so the worker loads its TypeScript entry through tsx.
import { tsImport } from 'tsx/esm/api'

await tsImport('./worker.ts', import.meta.url)
