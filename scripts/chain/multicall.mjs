// Puts a Multicall3 (contracts/Multicall3.sol) at the canonical address
// 0xcA11bde05977b3631167028862bE2a173976CA11 on a local anvil chain: deploys it normally, then
// copies its runtime code there with `anvil_setCode` (it has no immutables or storage, so the
// copy behaves the same). Prints nothing but errors; idempotent.
//
//   node scripts/chain/multicall.mjs RPC_URL
import { deploy, die, rpc, run } from "./dev.mjs";

const CANONICAL = "0xcA11bde05977b3631167028862bE2a173976CA11";
const [rpcUrl] = process.argv.slice(2);
if (!rpcUrl) die("usage: multicall.mjs RPC_URL");

run(async () => {
  const deployed = await deploy(rpcUrl, "Multicall3");
  const code = await rpc(rpcUrl, "eth_getCode", [deployed, "latest"]);
  if (!code || code === "0x") throw new Error("Multicall3 deployed without code");
  await rpc(rpcUrl, "anvil_setCode", [CANONICAL, code]);
  // Mine a block so reads at `latest` (and tags behind it) see the code in a sealed block.
  await rpc(rpcUrl, "evm_mine", []);
  const placed = await rpc(rpcUrl, "eth_getCode", [CANONICAL, "latest"]);
  if (placed !== code) throw new Error("anvil_setCode did not take");
});
