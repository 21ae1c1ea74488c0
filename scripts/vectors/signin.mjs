// Signs in to a StreamGate origin with SIWE the way a browser wallet does (viem), and prints
// the session token alone on stdout. Used by `make demo`.
//
//   node scripts/vectors/signin.mjs ORIGIN_URL PRIVATE_KEY_HEX [CHAIN_ID]
import { createSiweMessage } from 'viem/siwe';
import { privateKeyToAccount } from 'viem/accounts';

const [origin, key, chain = '31337'] = process.argv.slice(2);
if (!origin || !key) {
  console.error('usage: signin.mjs ORIGIN_URL PRIVATE_KEY_HEX [CHAIN_ID]');
  process.exit(2);
}
const account = privateKeyToAccount(key.startsWith('0x') ? key : `0x${key}`);
const post = async (path, body) => {
  const r = await fetch(`${origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
};
const { nonce } = await post('/v1/auth/nonce');
const url = new URL(origin);
const message = createSiweMessage({
  domain: url.host,
  address: account.address,
  statement: 'Sign in to StreamGate.',
  uri: origin,
  version: '1',
  chainId: Number(chain),
  nonce,
  issuedAt: new Date(),
});
const signature = await account.signMessage({ message });
const { token, subject } = await post('/v1/auth/siwe', { message, signature });
console.error(`signed in as ${subject}`);
console.log(token);
