// Creates an SPL mint (decimals 0) on a local cluster and mints 1 token to OWNER's associated
// token account; prints the mint address.
// Usage: node mint.mjs RPC_URL WS_URL OWNER_PUBKEY
import { Connection, Keypair, LAMPORTS_PER_SOL, PublicKey } from '@solana/web3.js';
import { createMint, getOrCreateAssociatedTokenAccount, mintTo } from '@solana/spl-token';

const [rpc, ws, ownerArg] = process.argv.slice(2);
if (!rpc || !ws || !ownerArg) {
  console.error('usage: node mint.mjs RPC_URL WS_URL OWNER_PUBKEY');
  process.exit(2);
}
const owner = new PublicKey(ownerArg);
const connection = new Connection(rpc, { commitment: 'confirmed', wsEndpoint: ws });
const payer = Keypair.generate();
const sig = await connection.requestAirdrop(payer.publicKey, 10 * LAMPORTS_PER_SOL);
const latest = await connection.getLatestBlockhash();
await connection.confirmTransaction({ signature: sig, ...latest }, 'confirmed');

const mint = await createMint(connection, payer, payer.publicKey, null, 0);
const ata = await getOrCreateAssociatedTokenAccount(connection, payer, mint, owner);
await mintTo(connection, payer, mint, ata.address, payer, 1);
process.stdout.write(`${mint.toBase58()}\n`);
process.exit(0);
