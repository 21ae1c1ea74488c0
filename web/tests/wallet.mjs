// The test wallet the browser checks inject: window.ethereum is an EIP-1193 provider whose
// requests cross into Node through a Playwright binding and are answered by a viem local
// account (the key never enters the page). `refuse`: personal_sign answers EIP-1193 4001.
import { privateKeyToAccount } from 'viem/accounts';

export async function injectWallet(context, { key, chainId = 31337, refuse = false, onSign = () => {} }) {
  const account = privateKeyToAccount(key);
  await context.exposeBinding('__sgWallet', async (_source, method, params) => {
    switch (method) {
      case 'eth_requestAccounts':
      case 'eth_accounts':
        return { result: [account.address] };
      case 'eth_chainId':
        return { result: `0x${chainId.toString(16)}` };
      case 'personal_sign':
        onSign();
        if (refuse) return { error: { code: 4001, message: 'User rejected the request.' } };
        return { result: await account.signMessage({ message: { raw: params[0] } }) };
      default:
        return { error: { code: 4200, message: `unsupported method ${method}` } };
    }
  });
  await context.addInitScript(() => {
    window.ethereum = {
      async request({ method, params }) {
        const r = await window.__sgWallet(method, params || []);
        if (r.error) throw Object.assign(new Error(r.error.message), { code: r.error.code });
        return r.result;
      },
      on() {},
      removeListener() {},
    };
  });
  return account.address;
}

/** A Wallet Standard Solana wallet (`standard:connect`, `solana:signMessage`) registered in
 *  the page; Ed25519 signing in Node (node:crypto) from a 32-byte `seed`. Returns the address. */
export async function injectSolanaWallet(context, { seed, chain = 'solana:mainnet', refuse = false, onSign = () => {} }) {
  const { createPrivateKey, createPublicKey, sign } = await import('node:crypto');
  const { default: bs58 } = await import('bs58');
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed)]);
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-32);
  const address = bs58.encode(publicKey);
  await context.exposeBinding('__sgSolana', async (_source, what, message) => {
    if (what === 'connect') return { address, publicKey: [...publicKey], chain };
    onSign();
    if (refuse) return { error: 'User rejected the request.' };
    return { signature: [...sign(null, Buffer.from(message), key)] };
  });
  await context.addInitScript(() => {
    const wallet = {
      version: '1.0.0',
      name: 'Test Solana Wallet',
      icon: 'data:image/svg+xml;base64,PHN2Zy8+',
      chains: ['solana:mainnet', 'solana:devnet', 'solana:localnet'],
      accounts: [],
      features: {
        'standard:connect': {
          version: '1.0.0',
          async connect() {
            const a = await window.__sgSolana('connect');
            const account = {
              address: a.address,
              publicKey: new Uint8Array(a.publicKey),
              chains: [a.chain],
              features: ['solana:signMessage'],
            };
            wallet.accounts = [account];
            return { accounts: [account] };
          },
        },
        'standard:events': { version: '1.0.0', on: () => () => {} },
        'solana:signMessage': {
          version: '1.0.0',
          async signMessage(...inputs) {
            return Promise.all(inputs.map(async ({ message }) => {
              const r = await window.__sgSolana('sign', Array.from(message));
              if (r.error) throw Object.assign(new Error(r.error), { code: 4001 });
              return { signedMessage: message, signature: new Uint8Array(r.signature) };
            }));
          },
        },
      },
    };
    const register = ({ register: r }) => r(wallet);
    window.addEventListener('wallet-standard:app-ready', (e) => register(e.detail));
    window.dispatchEvent(new CustomEvent('wallet-standard:register-wallet', { detail: register }));
  });
  return address;
}
