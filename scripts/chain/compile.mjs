// Compiles scripts/chain/contracts/*.sol with solcjs (standard JSON, evmVersion cancun,
// optimizer on) into scripts/chain/build/<Contract>.json ({ contractName, abi, bytecode }), and
// writes the EIP-6492 validator's creation code to origin/src/contract_wallet/erc6492_validator.hex,
// which origin embeds. The build files are what the fixture scripts deploy: deploy-wallet.mjs
// (test wallets), deploy-tokens.mjs and tokens.mjs (ERC-721/1155/20 test tokens, Tokens.sol),
// multicall.mjs (Multicall3 at its canonical address). The output is committed; `make test`
// runs `--check`, which compiles again and fails if any committed file differs.
//
//   node scripts/chain/compile.mjs [--check]
import { readFileSync, writeFileSync, readdirSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const check = process.argv.includes("--check");

const sources = {};
for (const f of readdirSync(join(here, "contracts")).filter((f) => f.endsWith(".sol")).sort()) {
  sources[`contracts/${f}`] = { content: readFileSync(join(here, "contracts", f), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 200 },
    // No CBOR metadata trailer: the bytecode then depends only on the sources and settings.
    metadata: { appendCBOR: false },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const findImports = (path) => {
  const file = join(here, "node_modules", path);
  return existsSync(file) ? { contents: readFileSync(file, "utf8") } : { error: `not found: ${path}` };
};
const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (out.errors ?? []).filter((e) => e.severity === "error");
for (const e of out.errors ?? []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

const files = {};
for (const [src, contracts] of Object.entries(out.contracts)) {
  if (!src.startsWith("contracts/")) continue; // OpenZeppelin libraries and interfaces
  for (const [name, c] of Object.entries(contracts)) {
    if (!c.evm.bytecode.object) continue; // interfaces and abstract contracts
    const art = { contractName: name, source: src, compiler: solc.version(), abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
    files[join(here, "build", `${name}.json`)] = `${JSON.stringify(art, null, 2)}\n`;
  }
}
const validator = JSON.parse(files[join(here, "build", "Erc6492Validator.json")]);
files[join(root, "origin/src/contract_wallet/erc6492_validator.hex")] = `${validator.bytecode.slice(2)}\n`;

let stale = 0;
for (const [path, text] of Object.entries(files)) {
  const old = existsSync(path) ? readFileSync(path, "utf8") : null;
  if (old === text) continue;
  if (check) {
    console.error(`stale: ${path.slice(root.length + 1)} (run: node scripts/chain/compile.mjs)`);
    stale++;
  } else {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    console.error(`wrote ${path.slice(root.length + 1)}`);
  }
}
if (stale) process.exit(1);
if (check) console.error("chain: contract build output is current");
