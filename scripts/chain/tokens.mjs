// Mints and transfers the test tokens of deploy-tokens.mjs on a local anvil chain. Mints come
// from dev account 0 (the tokens' owner); transfers from the holder, impersonated with
// `anvil_impersonateAccount` (and given gas money), so any address can be a holder. Prints
// nothing but errors; exit status 0 means the transaction was mined and succeeded.
//
//   node scripts/chain/tokens.mjs mint     RPC_URL erc721  CONTRACT TO ID
//   node scripts/chain/tokens.mjs mint     RPC_URL erc1155 CONTRACT TO ID AMOUNT
//   node scripts/chain/tokens.mjs mint     RPC_URL erc20   CONTRACT TO AMOUNT
//   node scripts/chain/tokens.mjs transfer RPC_URL erc721  CONTRACT FROM TO ID
//   node scripts/chain/tokens.mjs transfer RPC_URL erc1155 CONTRACT FROM TO ID AMOUNT
//   node scripts/chain/tokens.mjs transfer RPC_URL erc20   CONTRACT FROM TO AMOUNT
import { encodeFunctionData, getAddress } from "viem";
import { DEV_ACCOUNT_0, artifact, die, rpc, run, send } from "./dev.mjs";

const USAGE = "usage: tokens.mjs mint RPC_URL KIND CONTRACT TO [ID] [AMOUNT] | transfer RPC_URL KIND CONTRACT FROM TO [ID] [AMOUNT]";
const ABI = { erc721: "TestErc721", erc1155: "TestErc1155", erc20: "TestErc20" };
// What follows the addresses, per kind: token id and/or amount.
const TAIL = { erc721: ["id"], erc1155: ["id", "amount"], erc20: ["amount"] };

const [cmd, rpcUrl, kind, contractArg, ...rest] = process.argv.slice(2);
if (!["mint", "transfer"].includes(cmd) || !rpcUrl || !ABI[kind] || !contractArg) die(USAGE);
const addresses = cmd === "mint" ? 1 : 2;
if (rest.length !== addresses + TAIL[kind].length) die(USAGE);

const parseUint = (s) => {
  if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(s)) die(`not an unsigned integer: ${s}`);
  return BigInt(s);
};
const contract = getAddress(contractArg);
const addrs = rest.slice(0, addresses).map((a) => getAddress(a));
const [id, amount] = kind === "erc20" ? [undefined, parseUint(rest[addresses])] : rest.slice(addresses).map(parseUint);
const { abi } = artifact(ABI[kind]);

function call() {
  if (cmd === "mint") {
    const [to] = addrs;
    const args = { erc721: [to, id], erc1155: [to, id, amount], erc20: [to, amount] }[kind];
    return { from: DEV_ACCOUNT_0, data: encodeFunctionData({ abi, functionName: "mint", args }) };
  }
  const [from, to] = addrs;
  const [functionName, args] = {
    erc721: ["transferFrom", [from, to, id]],
    erc1155: ["safeTransferFrom", [from, to, id, amount, "0x"]],
    erc20: ["transfer", [to, amount]],
  }[kind];
  return { from, data: encodeFunctionData({ abi, functionName, args }) };
}

run(async () => {
  const tx = call();
  if (cmd === "transfer") {
    await rpc(rpcUrl, "anvil_impersonateAccount", [tx.from]);
    const balance = BigInt(await rpc(rpcUrl, "eth_getBalance", [tx.from, "latest"]));
    if (balance < 10n ** 17n) await rpc(rpcUrl, "anvil_setBalance", [tx.from, "0xde0b6b3a7640000"]);
  }
  await send(rpcUrl, { ...tx, to: contract });
});
