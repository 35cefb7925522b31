// The worker side of the plugin is JavaScript (see plugins/webhook/protocol.ts for why) with
// JSDoc types; this keeps it under the same strict type check as the TypeScript files.
import test from 'ava'
import ts from 'typescript'

const WORKER = new URL('../../plugins/webhook/worker.mjs', import.meta.url).pathname

test('worker.mjs and the modules it loads (sender, signing, records, encoding) pass a strict type check', (t) => {
  const program = ts.createProgram([WORKER], {
    allowJs: true,
    checkJs: true,
    strict: true,
    noEmit: true,
    noUnusedLocals: true,
    target: ts.ScriptTarget.ES2023,
    // Node 20 has ES2023 and String#isWellFormed (ES2024), not the rest of ES2024
    lib: ['lib.es2023.d.ts', 'lib.es2024.string.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
    types: ['node']
  })
  const checked = program.getSourceFiles().map((file) => file.fileName).filter((name) => name.includes('/plugins/webhook/'))
  for (const module of ['sender.mjs', 'signing.mjs', 'records.mjs', 'encoding.mjs']) t.true(checked.some((name) => name.endsWith(module)), module)
  const problems = ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const where = diagnostic.file ? `${diagnostic.file.fileName}:${diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line + 1}: ` : ''
    return where + ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')
  })
  t.deepEqual(problems, [])
})
