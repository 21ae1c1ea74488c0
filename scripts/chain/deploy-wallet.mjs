// Deploys a test contract wallet owned by OWNER_ADDRESS on the local chain, from anvil's first
// dev account (its well-known key: local chains only), and prints ONLY the result on stdout.
//
//   node scripts/chain/deploy-wallet.mjs RPC_URL OWNER_ADDRESS                   → TestWallet address
//   node scripts/chain/deploy-wallet.mjs RPC_URL OWNER_ADDRESS --legacy          → LegacyTestWallet address
//   node scripts/chain/deploy-wallet.mjs RPC_URL OWNER_ADDRESS --counterfactual  → JSON
//        {"address", "factory", "factoryCalldata"}: a TestWalletFactory is deployed, the wallet is
//        not; `address` is where factory.deploy(owner, salt) (= factoryCalldata) would put it.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createPublicClient, createWalletClient, encodeFunctionData, getAddress, http, keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { foundry } from "viem/chains";

// anvil's dev account 0 (mnemonic "test test … junk"): public knowledge, worthless off a dev chain.
const ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

const [rpc, ownerArg, mode = ""] = process.argv.slice(2);
if (!rpc || !ownerArg || !["", "--legacy", "--counterfactual"].includes(mode)) {
  console.error("usage: deploy-wallet.mjs RPC_URL OWNER_ADDRESS [--legacy|--counterfactual]");
  process.exit(2);
}
const owner = getAddress(ownerArg);
const here = dirname(fileURLToPath(import.meta.url));
const artifact = (name) => JSON.parse(readFileSync(join(here, "build", `${name}.json`), "utf8"));

const transport = http(rpc);
const pub = createPublicClient({ chain: foundry, transport });
const wallet = createWalletClient({ account: privateKeyToAccount(ANVIL_KEY_0), chain: foundry, transport });

// Tests may deploy concurrently from the same account: retry when another deploy took the nonce.
async function deploy(name, args) {
  const { abi, bytecode } = artifact(name);
  for (let attempt = 0; ; attempt++) {
    try {
      const hash = await wallet.deployContract({ abi, bytecode, args });
      const receipt = await pub.waitForTransactionReceipt({ hash, pollingInterval: 50 });
      if (receipt.status !== "success" || !receipt.contractAddress) throw new Error(`deploy of ${name} failed`);
      return receipt.contractAddress;
    } catch (e) {
      if (attempt >= 5 || !/nonce/i.test(String(e?.message))) throw e;
      await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
    }
  }
}

if (mode === "--counterfactual") {
  const factoryArt = artifact("TestWalletFactory");
  const factory = await deploy("TestWalletFactory", []);
  const salt = keccak256(toHex(`streamgate-test-${owner}-${Date.now()}-${Math.random()}`));
  const address = await pub.readContract({ address: factory, abi: factoryArt.abi, functionName: "addressOf", args: [owner, salt] });
  const factoryCalldata = encodeFunctionData({ abi: factoryArt.abi, functionName: "deploy", args: [owner, salt] });
  console.log(JSON.stringify({ address: getAddress(address), factory: getAddress(factory), factoryCalldata }));
} else {
  console.log(getAddress(await deploy(mode === "--legacy" ? "LegacyTestWallet" : "TestWallet", [owner])));
}
