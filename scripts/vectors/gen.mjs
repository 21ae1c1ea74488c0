// Sign-in test vectors for streamgate-auth, produced by real wallet libraries.
//
// How to run (from the repo root):
//   npm ci --prefix scripts/vectors && node scripts/vectors/gen.mjs
//   node scripts/vectors/gen.mjs --check   # fail if the committed JSON is out of date
//
// Writes auth/tests/vectors/siwe.json (viem's createSiweMessage + privateKeyToAccount.signMessage,
// EIP-191 personal_sign) and auth/tests/vectors/siws.json (@solana/wallet-standard-util's
// createSignInMessageText, signed with tweetnacl, keys via @solana/web3.js, base58 via bs58).
// Everything is fixed (keys, times, nonces) and both signature schemes are deterministic, so the
// output is byte-for-byte reproducible. Each vector carries the rules and the `now` it is checked
// against, so the Rust tests need nothing else.

import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSiweMessage } from 'viem/siwe';
import { privateKeyToAccount } from 'viem/accounts';
import { createSignInMessageText, verifySignIn } from '@solana/wallet-standard-util';
import { Keypair } from '@solana/web3.js';
import nacl from 'tweetnacl';
import bs58 from 'bs58';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, '..', '..', 'auth', 'tests', 'vectors');
const pkg = (name) => JSON.parse(readFileSync(join(here, 'node_modules', name, 'package.json'), 'utf8')).version;

const ISSUED = new Date('2026-01-01T00:00:00.000Z');
const T0 = Math.floor(ISSUED.getTime() / 1000);
const NOW = T0 + 60;
const at = (s) => new Date((T0 + s) * 1000);

// ---------------------------------------------------------------- SIWE (EIP-4361)
// Anvil's well-known development keys (public test keys; never hold value with them).
const ANVIL = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
].map((k) => privateKeyToAccount(k));

const SIWE_RULES = {
  domain: 'streamgate.example',
  allowed_uri_origins: ['https://streamgate.example'],
  chain_ids: [1, 137],
  max_skew_s: 30,
  max_age_s: 600,
};
const LOCAL_RULES = {
  domain: 'localhost:3000',
  allowed_uri_origins: ['http://localhost:3000'],
  chain_ids: [31337],
  max_skew_s: 30,
  max_age_s: 600,
};

const siweBase = (account, over = {}) => ({
  address: account.address,
  chainId: 1,
  domain: 'streamgate.example',
  nonce: 'k3Jd82HsQpZx01Ab',
  uri: 'https://streamgate.example/login',
  version: '1',
  issuedAt: ISSUED,
  ...over,
});

async function siwe(name, account, over, extra = {}) {
  const params = siweBase(account, over);
  const message = createSiweMessage(params);
  const signature = await (extra.signer ?? account).signMessage({ message });
  return {
    name,
    rules: extra.rules ?? SIWE_RULES,
    now: extra.now ?? NOW,
    message,
    signature,
    address: account.address,
    subject: `eip155:${params.chainId}:${account.address}`,
    domain: params.domain,
    uri: params.uri,
    chain_id: params.chainId,
    nonce: params.nonce,
    issued_at: params.issuedAt.toISOString(),
  };
}

// Malformed vectors also carry `detail`: the precise parse error code (MessageError::code).
// Signs `message` as given (for hand-made malformed texts that viem would refuse to build).
async function siweRaw(name, account, message, error) {
  return { name, rules: SIWE_RULES, now: NOW, message, signature: await account.signMessage({ message }), error };
}

// The address with the case of its first hex letter flipped: same bytes, wrong EIP-55 checksum.
function flipFirstLetter(addr) {
  const i = 2 + addr.slice(2).search(/[a-fA-F]/);
  const c = addr[i];
  return addr.slice(0, i) + (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) + addr.slice(i + 1);
}

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

async function siweVectors() {
  const [a, b, c] = ANVIL;
  const accept = [
    await siwe('minimal', a, {}),
    await siwe('statement_expiry_resources', b, {
      statement: 'Sign in to StreamGate to watch gated videos.',
      expirationTime: at(600),
      notBefore: at(-5),
      requestId: 'req-42',
      resources: ['ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/', 'https://streamgate.example/terms'],
      chainId: 137,
    }),
    await siwe('scheme_https', c, { scheme: 'https', statement: 'I accept the StreamGate Terms of Service: https://streamgate.example/tos' }),
    await siwe('localhost_http', a, { scheme: 'http', domain: 'localhost:3000', uri: 'http://localhost:3000/', chainId: 31337 }, { rules: LOCAL_RULES }),
  ];
  // v in {0,1} instead of {27,28}: same signature, other encoding.
  const v01 = { ...accept[0], name: 'v_zero_one' };
  const vByte = parseInt(v01.signature.slice(130, 132), 16);
  v01.signature = v01.signature.slice(0, 130) + (vByte - 27).toString(16).padStart(2, '0');
  accept.push(v01);

  const rej = async (name, error, account, over, extra) => ({ ...(await siwe(name, account, over, extra)), error });
  const reject = [
    await rej('wrong_domain', 'wrong_domain', a, { domain: 'evil.example' }),
    await rej('http_scheme_public_domain', 'wrong_scheme', a, { scheme: 'http' }),
    await rej('wrong_uri', 'wrong_uri', a, { uri: 'https://evil.example/login' }),
    await rej('wrong_uri_port', 'wrong_uri', a, { uri: 'https://streamgate.example:8443/login' }),
    await rej('wrong_chain', 'wrong_chain', a, { chainId: 5 }),
    await rej('expired', 'expired_message', a, { expirationTime: at(30) }, { now: T0 + 31 }),
    await rej('not_before_future', 'not_yet_valid', a, { notBefore: at(3600) }),
    await rej('issued_in_future', 'issued_in_future', a, { issuedAt: at(3600) }),
    await rej('stale', 'stale_message', a, {}, { now: T0 + 3600 }),
    await rej('signed_by_other_key', 'signer_mismatch', a, {}, { signer: b }),
  ];
  const tampered = await siwe('tampered_statement', a, { statement: 'Sign in to StreamGate.' });
  reject.push({ ...tampered, message: tampered.message.replace('StreamGate.', 'StreamGate and transfer all.'), error: 'signer_mismatch' });

  // High-s twin of a valid signature (EIP-2 malleability): s' = n - s, v flipped.
  const good = accept[0];
  const s = BigInt('0x' + good.signature.slice(66, 130));
  const v = parseInt(good.signature.slice(130, 132), 16);
  const hi = '0x' + good.signature.slice(2, 66) + (N - s).toString(16).padStart(64, '0') + (v === 27 ? '1c' : '1b');
  reject.push({ ...good, name: 'high_s', signature: hi, error: 'bad_signature' });
  reject.push({ ...good, name: 'v_29', signature: good.signature.slice(0, 130) + '1d', error: 'bad_signature' });
  reject.push({ ...good, name: 'short_signature', signature: good.signature.slice(0, 128), error: 'bad_signature' });
  reject.push({ ...good, name: 'not_hex_signature', signature: '0xzz' + good.signature.slice(4), error: 'bad_signature' });

  const m = good.message;
  const malformed = [
    ['lowercase_address', m.replace(a.address, a.address.toLowerCase()), 'bad_checksum'],
    ['uppercase_address', m.replace(a.address, '0x' + a.address.slice(2).toUpperCase()), 'bad_checksum'],
    ['bad_checksum', m.replace(a.address, flipFirstLetter(a.address)), 'bad_checksum'],
    ['missing_version', m.replace('Version: 1\n', ''), 'missing_field'],
    ['version_2', m.replace('Version: 1', 'Version: 2'), 'bad_version'],
    ['out_of_order', m.replace('Version: 1\nChain ID: 1', 'Chain ID: 1\nVersion: 1'), 'missing_field'],
    ['unknown_field', m.replace('Nonce:', 'Colour: blue\nNonce:'), 'missing_field'],
    ['trailing_newline', m + '\n', 'unexpected_line'],
    ['trailing_garbage', m + '\nhello', 'unexpected_line'],
    ['crlf', m.replaceAll('\n', '\r\n'), 'control_character'],
    ['short_nonce', m.replace('k3Jd82HsQpZx01Ab', 'k3Jd82'), 'bad_nonce'],
    ['nonce_symbols', m.replace('k3Jd82HsQpZx01Ab', 'k3Jd82Hs-QpZx01Ab'), 'bad_nonce'],
    ['bad_issued_at', m.replace('2026-01-01T00:00:00.000Z', '2026-01-01 00:00:00'), 'bad_timestamp'],
    ['one_blank_line', m.replace('\n\n\nURI', '\n\nURI'), 'bad_layout'],
    ['wrong_header', m.replace('Ethereum account', 'Solana account'), 'bad_header'],
    ['empty', '', 'bad_header'],
    ['header_only', m.split('\n')[0], 'bad_address'],
    ['statement_only_two_lines', m.replace('\n\n\nURI', '\n\nline one\nline two\n\nURI'), 'bad_layout'],
    ['chain_id_leading_zero', m.replace('Chain ID: 1', 'Chain ID: 01'), 'bad_chain_id'],
    ['resources_not_dash', createSiweMessage(siweBase(a, { resources: ['https://streamgate.example/a'] })).replace('- https', '* https'), 'unexpected_line'],
  ];
  for (const [name, text, detail] of malformed) {
    reject.push({ ...(await siweRaw('malformed_' + name, a, text, 'malformed_message')), detail });
  }
  return { accept, reject };
}

// ---------------------------------------------------------------- SIWS (wallet-standard)
const CLUSTERS = [
  { name: 'mainnet', reference: '5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp' },
  { name: 'devnet', reference: 'EtWTRABZaYq6iMfeYKouRu166VU2xqa1' },
  { name: 'localnet', reference: 'GH7ome3EiwEr7tu9JuTh2dpYWBJK3z69' },
];
const SIWS_RULES = {
  domain: 'streamgate.example',
  allowed_uri_origins: ['https://streamgate.example'],
  clusters: CLUSTERS,
  max_skew_s: 30,
  max_age_s: 600,
};
const seed = (i) => Uint8Array.from({ length: 32 }, (_, j) => (i * 37 + j * 11 + 1) & 0xff);
const SOL = [0, 1, 2].map((i) => Keypair.fromSeed(seed(i)));
const sign = (text, kp) => bs58.encode(nacl.sign.detached(new TextEncoder().encode(text), kp.secretKey));

function siwsInput(kp, over = {}) {
  return {
    domain: 'streamgate.example',
    address: kp.publicKey.toBase58(),
    uri: 'https://streamgate.example/login',
    version: '1',
    chainId: 'mainnet',
    nonce: 'p9Xc2LmQ77aBcDeF',
    issuedAt: ISSUED.toISOString(),
    ...over,
  };
}

function siws(name, kp, over = {}, extra = {}) {
  const input = siwsInput(kp, over);
  const message = createSignInMessageText(input);
  const signer = extra.signer ?? kp;
  const signature = sign(message, signer);
  if (!extra.signer) {
    // Cross-check with the wallet-standard verifier (the same code dapps run).
    const ok = verifySignIn(input, {
      account: { publicKey: kp.publicKey.toBytes() },
      signedMessage: new TextEncoder().encode(message),
      signature: bs58.decode(signature),
    });
    if (!ok) throw new Error(`wallet-standard rejects its own vector ${name}`);
  }
  const cluster = CLUSTERS.find((c) => c.name === input.chainId.replace(/^solana:/, ''));
  return {
    name,
    rules: extra.rules ?? SIWS_RULES,
    now: extra.now ?? NOW,
    message,
    signature,
    public_key: extra.publicKey ?? kp.publicKey.toBase58(),
    address: kp.publicKey.toBase58(),
    subject: cluster ? `solana:${cluster.reference}:${kp.publicKey.toBase58()}` : null,
    domain: input.domain,
    uri: input.uri,
    chain_id: input.chainId,
    nonce: input.nonce,
    issued_at: input.issuedAt,
  };
}

function siwsVectors() {
  const [a, b, c] = SOL;
  const accept = [
    siws('minimal', a),
    siws('statement_expiry_resources', b, {
      statement: 'Sign in to StreamGate to watch gated videos.',
      chainId: 'devnet',
      expirationTime: at(600).toISOString(),
      notBefore: at(-5).toISOString(),
      requestId: 'req-7',
      resources: ['https://streamgate.example/terms', 'ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/'],
    }),
    siws('localnet', c, { chainId: 'localnet' }),
    siws('caip2_chain_name', a, { chainId: 'solana:mainnet' }),
  ];
  const rej = (name, error, kp, over, extra) => ({ ...siws(name, kp, over, extra), error });
  const reject = [
    rej('wrong_domain', 'wrong_domain', a, { domain: 'evil.example' }),
    rej('wrong_uri', 'wrong_uri', a, { uri: 'https://evil.example/login' }),
    rej('wrong_chain', 'wrong_chain', a, { chainId: 'testnet' }),
    rej('expired', 'expired_message', a, { expirationTime: at(30).toISOString() }, { now: T0 + 31 }),
    rej('not_before_future', 'not_yet_valid', a, { notBefore: at(3600).toISOString() }),
    rej('issued_in_future', 'issued_in_future', a, { issuedAt: at(3600).toISOString() }),
    rej('stale', 'stale_message', a, {}, { now: T0 + 3600 }),
    rej('signed_by_other_key', 'bad_signature', a, {}, { signer: b }),
    rej('public_key_not_address', 'public_key_mismatch', a, {}, { publicKey: b.publicKey.toBase58() }),
  ];
  const tampered = siws('tampered_statement', a, { statement: 'Sign in to StreamGate.' });
  reject.push({ ...tampered, message: tampered.message.replace('StreamGate.', 'StreamGate and approve.'), error: 'bad_signature' });
  const good = accept[0];
  const sig = bs58.decode(good.signature);
  sig[10] ^= 1;
  reject.push({ ...good, name: 'flipped_signature_bit', signature: bs58.encode(sig), error: 'bad_signature' });
  reject.push({ ...good, name: 'short_signature', signature: bs58.encode(sig.slice(0, 63)), error: 'bad_signature' });
  // A small-order point (the identity, encoded 0x01 00…00) as the account key.
  const weak = new Uint8Array(32);
  weak[0] = 1;
  const weakAddr = bs58.encode(weak);
  reject.push({
    ...good,
    name: 'weak_public_key',
    message: good.message.replace(good.address, weakAddr),
    public_key: weakAddr,
    error: 'bad_public_key',
  });

  const m = good.message;
  const malformed = [
    ['missing_nonce', m.replace(/\nNonce: [^\n]+/, ''), 'missing_field'],
    ['missing_issued_at', m.replace(/\nIssued At: [^\n]+/, ''), 'missing_field'],
    ['out_of_order', m.replace('Version: 1\nChain ID: mainnet', 'Chain ID: mainnet\nVersion: 1'), 'missing_field'],
    ['not_base58_address', m.replace(good.address, good.address.slice(0, -1) + '0'), 'bad_address'],
    ['short_address', m.replace(good.address, good.address.slice(0, 20)), 'bad_address'],
    ['trailing_newline', m + '\n', 'unexpected_line'],
    ['unknown_field', m.replace('Nonce:', 'Colour: blue\nNonce:'), 'missing_field'],
    ['ethereum_header', m.replace('Solana account', 'Ethereum account'), 'bad_header'],
    ['short_nonce', m.replace('p9Xc2LmQ77aBcDeF', 'p9Xc'), 'bad_nonce'],
    ['version_2', m.replace('Version: 1', 'Version: 2'), 'bad_version'],
    ['crlf', m.replaceAll('\n', '\r\n'), 'control_character'],
    ['empty', '', 'bad_header'],
  ];
  for (const [name, text, detail] of malformed) {
    reject.push({ name: 'malformed_' + name, rules: SIWS_RULES, now: NOW, message: text, signature: sign(text, a), public_key: good.public_key, error: 'malformed_message', detail });
  }
  return { accept, reject };
}

// ---------------------------------------------------------------- output
const generator = {
  script: 'scripts/vectors/gen.mjs',
  viem: pkg('viem'),
  '@solana/wallet-standard-util': pkg('@solana/wallet-standard-util'),
  '@solana/web3.js': pkg('@solana/web3.js'),
  tweetnacl: pkg('tweetnacl'),
  bs58: pkg('bs58'),
};
const files = {
  'siwe.json': { generator, ...(await siweVectors()) },
  'siws.json': { generator, ...siwsVectors() },
};
const check = process.argv.includes('--check');
mkdirSync(outDir, { recursive: true });
let stale = 0;
for (const [file, data] of Object.entries(files)) {
  const path = join(outDir, file);
  const text = JSON.stringify(data, null, 2) + '\n';
  if (check) {
    let old = '';
    try { old = readFileSync(path, 'utf8'); } catch { /* missing counts as stale */ }
    if (old !== text) { console.error(`${path} is out of date: run node scripts/vectors/gen.mjs`); stale++; }
  } else {
    writeFileSync(path, text);
    console.log(`wrote ${path}: ${data.accept.length} accepted, ${data.reject.length} rejected`);
  }
}
process.exit(stale ? 1 : 0);
