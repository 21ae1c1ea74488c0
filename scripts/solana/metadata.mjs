// Writes a Metaplex Token Metadata account (MetadataV1) for MINT naming COLLECTION, verified or
// not, at the mint's metadata PDA, through Surfnet's `surfnet_setAccount` cheatcode (an offline
// Surfnet has no Metaplex program to create it with); prints the PDA.
// Usage: node metadata.mjs RPC_URL MINT COLLECTION true|false
import { PublicKey } from '@solana/web3.js';

const [rpc, mintArg, collectionArg, verifiedArg] = process.argv.slice(2);
if (!rpc || !mintArg || !collectionArg || !['true', 'false'].includes(verifiedArg)) {
  console.error('usage: node metadata.mjs RPC_URL MINT COLLECTION true|false');
  process.exit(2);
}
const METADATA_PROGRAM = new PublicKey('metaqbxxUerdq28cj1RbAWkYQm3ybzjb6a8bt518x1s');
const mint = new PublicKey(mintArg);
const collection = new PublicKey(collectionArg);
const [pda] = PublicKey.findProgramAddressSync(
  [Buffer.from('metadata'), METADATA_PROGRAM.toBuffer(), mint.toBuffer()],
  METADATA_PROGRAM,
);

const str = (s) => {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length);
  return Buffer.concat([len, b]);
};
const data = Buffer.concat([
  Buffer.from([4]), // Key::MetadataV1
  Buffer.alloc(32, 7), // update authority
  mint.toBuffer(),
  str('StreamGate Pass'),
  str('SGP'),
  str('https://example.invalid/pass.json'),
  Buffer.from([0, 0]), // seller fee basis points
  Buffer.from([0]), // creators: None
  Buffer.from([0, 1]), // primary sale happened, is mutable
  Buffer.from([1, 255]), // edition nonce: Some(255)
  Buffer.from([1, 0]), // token standard: Some(NonFungible)
  Buffer.from([1, verifiedArg === 'true' ? 1 : 0]), // collection: Some({verified, …
  collection.toBuffer(), // … key})
  Buffer.from([0, 0, 0]), // uses, collection details, programmable config: None
]);
const padded = Buffer.concat([data, Buffer.alloc(679 - data.length)]);

const res = await fetch(rpc, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'surfnet_setAccount',
    params: [
      pda.toBase58(),
      {
        lamports: 5616720,
        data: padded.toString('hex'),
        owner: METADATA_PROGRAM.toBase58(),
        executable: false,
      },
    ],
  }),
});
const body = await res.json();
if (body.error) {
  console.error(JSON.stringify(body.error));
  process.exit(1);
}
process.stdout.write(`${pda.toBase58()}\n`);
