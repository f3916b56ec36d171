#!/usr/bin/env node
// Compile every Solidity source under contracts/src and contracts/test with the pinned
// npm `solc` (standard JSON, optimizer on) and write one artifact per contract to
// contracts/artifacts/<ContractName>.json: {contractName, sourceName, abi, bytecode,
// deployedBytecode}. Source unit names are relative to contracts/, so the output is the
// same on every machine.
//
//   node contracts/compile.mjs                  write the artifacts
//   node contracts/compile.mjs --check          exit 1 if the committed artifacts differ
//   node contracts/compile.mjs --only A.sol,B   compile only the sources whose path ends
//                                               with one of the names (and what they
//                                               import); write just their artifacts
//
// Imports starting with `@` (e.g. @openzeppelin/contracts) resolve from node_modules.
import { readFileSync, writeFileSync, readdirSync, mkdirSync, existsSync, rmSync } from 'node:fs'
import { join, relative, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const solc = require('solc')

const ROOT = dirname(fileURLToPath(import.meta.url))
const ARTIFACTS = join(ROOT, 'artifacts')
const SOURCE_DIRS = ['src', 'test']
const MAX_RUNTIME_BYTES = 24576 // EIP-170

export const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  metadata: { bytecodeHash: 'none', appendCBOR: false },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } }
}

function solidityFiles (dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return solidityFiles(path)
    return entry.name.endsWith('.sol') ? [path] : []
  }).sort()
}

function compile (only) {
  const sources = {}
  for (const dir of SOURCE_DIRS) {
    for (const file of solidityFiles(join(ROOT, dir))) {
      const name = relative(ROOT, file)
      if (only && !only.some((suffix) => name.endsWith(suffix))) continue
      sources[name] = { content: readFileSync(file, 'utf8') }
    }
  }
  const input = { language: 'Solidity', sources, settings: SETTINGS }
  const findImports = (path) => {
    const file = path.startsWith('@') ? join(ROOT, '..', 'node_modules', path) : join(ROOT, path)
    return existsSync(file) ? { contents: readFileSync(file, 'utf8') } : { error: `not found: ${path}` }
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }))
  const errors = (output.errors || []).filter((e) => e.severity === 'error')
  for (const e of output.errors || []) console.error(e.formattedMessage)
  if (errors.length) process.exit(1)
  const artifacts = {}
  for (const [sourceName, contracts] of Object.entries(output.contracts || {})) {
    if (sourceName.startsWith('@')) continue // libraries' own contracts are not ours to ship
    for (const [contractName, out] of Object.entries(contracts)) {
      const bytecode = out.evm.bytecode.object
      if (!bytecode) continue // interfaces and abstract contracts
      const runtime = out.evm.deployedBytecode.object.length / 2
      if (runtime > MAX_RUNTIME_BYTES) {
        console.error(`${contractName}: ${runtime} bytes of runtime code exceeds ${MAX_RUNTIME_BYTES}`)
        process.exit(1)
      }
      if (artifacts[contractName]) {
        console.error(`two contracts are named ${contractName}`)
        process.exit(1)
      }
      artifacts[contractName] = JSON.stringify({
        contractName,
        sourceName,
        compiler: solc.version(),
        abi: out.abi,
        bytecode: '0x' + bytecode,
        deployedBytecode: '0x' + out.evm.deployedBytecode.object
      }, null, 1) + '\n'
    }
  }
  return artifacts
}

const onlyAt = process.argv.indexOf('--only')
const only = onlyAt > 0 ? process.argv[onlyAt + 1].split(',').map((n) => n.endsWith('.sol') ? n : `${n}.sol`) : null
const artifacts = compile(only)
if (only) {
  mkdirSync(ARTIFACTS, { recursive: true })
  for (const [name, text] of Object.entries(artifacts)) writeFileSync(join(ARTIFACTS, `${name}.json`), text)
  console.log(`wrote ${Object.keys(artifacts).length} artifacts (--only ${only.join(',')})`)
} else if (process.argv.includes('--check')) {
  const committed = existsSync(ARTIFACTS) ? readdirSync(ARTIFACTS).filter((f) => f.endsWith('.json')) : []
  const stale = []
  for (const [name, text] of Object.entries(artifacts)) {
    const file = join(ARTIFACTS, `${name}.json`)
    if (!existsSync(file) || readFileSync(file, 'utf8') !== text) stale.push(name)
  }
  for (const file of committed) {
    if (!artifacts[file.slice(0, -5)]) stale.push(`${file} (no source)`)
  }
  if (stale.length) {
    console.error(`artifacts differ from the sources: ${stale.join(', ')}; run make contracts`)
    process.exit(1)
  }
  console.log(`${Object.keys(artifacts).length} artifacts match their sources`)
} else {
  rmSync(ARTIFACTS, { recursive: true, force: true })
  mkdirSync(ARTIFACTS, { recursive: true })
  for (const [name, text] of Object.entries(artifacts)) writeFileSync(join(ARTIFACTS, `${name}.json`), text)
  console.log(`wrote ${Object.keys(artifacts).length} artifacts to ${relative(process.cwd(), ARTIFACTS) || '.'}`)
}
