// Shared by the token fixture scripts: raw JSON-RPC to a local anvil node, transactions sent
// with `eth_sendTransaction` from anvil's unlocked dev account 0 (or an impersonated holder),
// so the node assigns nonces and concurrent scripts never race for one. Local chains only.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/// anvil's dev account 0 (mnemonic "test test … junk"): unlocked on anvil, owner of every fixture.
export const DEV_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

const here = dirname(fileURLToPath(import.meta.url));

/// The compiled artifact `build/<name>.json` ({ abi, bytecode }).
export const artifact = (name) => JSON.parse(readFileSync(join(here, "build", `${name}.json`), "utf8"));

/// Dies with a one-line error (scripts print nothing but errors).
export function die(msg) {
  console.error(msg);
  process.exit(1);
}

let id = 0;
/// One JSON-RPC call; throws on a transport error or a JSON-RPC error.
export async function rpc(url, method, params = []) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
  });
  if (!res.ok) throw new Error(`${method}: http ${res.status}`);
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

/// Sends a transaction from `from` (unlocked or impersonated) and waits for its receipt;
/// throws if it reverted.
export async function send(url, tx) {
  const hash = await rpc(url, "eth_sendTransaction", [tx]);
  for (let i = 0; i < 200; i++) {
    const receipt = await rpc(url, "eth_getTransactionReceipt", [hash]);
    if (receipt) {
      if (receipt.status !== "0x1") throw new Error(`transaction ${hash} reverted`);
      return receipt;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`transaction ${hash}: no receipt after 5 s`);
}

/// Deploys `build/<name>.json` (no constructor arguments) from dev account 0; returns its address.
export async function deploy(url, name) {
  const receipt = await send(url, { from: DEV_ACCOUNT_0, data: artifact(name).bytecode });
  if (!receipt.contractAddress) throw new Error(`deploy of ${name}: no contract address`);
  return receipt.contractAddress;
}

/// Runs `main`, turning any failure into a one-line error and exit status 1.
export function run(main) {
  main().catch((e) => die(String(e?.message ?? e)));
}
