// Deploys the test tokens (contracts/Tokens.sol) on a local anvil chain from anvil's dev
// account 0, which becomes their owner (the only account that may mint), and prints ONLY
//   {"erc721":"0x…","erc1155":"0x…","erc20":"0x…"}
// on stdout.
//
//   node scripts/chain/deploy-tokens.mjs RPC_URL
import { getAddress } from "viem";
import { deploy, die, run } from "./dev.mjs";

const [rpcUrl] = process.argv.slice(2);
if (!rpcUrl) die("usage: deploy-tokens.mjs RPC_URL");

run(async () => {
  const out = {};
  for (const [key, name] of [["erc721", "TestErc721"], ["erc1155", "TestErc1155"], ["erc20", "TestErc20"]]) {
    out[key] = getAddress(await deploy(rpcUrl, name));
  }
  console.log(JSON.stringify(out));
});
