// Sign In With Solana through a Wallet Standard wallet (Phantom, Solflare, Backpack…): the
// wallet's own `solana:signIn` when it has it, else `standard:connect` and `solana:signMessage`
// over the message @solana/wallet-standard-util builds. Origin checks every field.

import { getWallets } from '@wallet-standard/app';
import { createSignInMessageText } from '@solana/wallet-standard-util';
import bs58 from 'bs58';
import { origin } from './api.js';
import { SignInError } from './wallet.js';

/** The Solana wallets the page can see (registered by extensions). */
export function solanaWallets() {
  return getWallets()
    .get()
    .filter((w) => w.chains.some((c) => c.startsWith('solana:'))
      && ('solana:signIn' in w.features || ('standard:connect' in w.features && 'solana:signMessage' in w.features)));
}

/** Signs in with `wallet`; returns `{token, subject, expires_at}`. */
export async function signInWithSolana(wallet) {
  const { nonce } = await origin.nonce();
  const input = {
    domain: location.host,
    uri: location.origin,
    version: '1',
    nonce,
    issuedAt: new Date().toISOString(),
    statement: 'Sign in to StreamGate.',
  };
  let account;
  let signedMessage;
  let signature;
  try {
    if ('solana:signIn' in wallet.features) {
      const chain = wallet.chains.find((c) => c.startsWith('solana:'));
      [{ account, signedMessage, signature }] = await wallet.features['solana:signIn'].signIn({
        ...input,
        chainId: chain.replace(/^solana:/, ''),
      });
    } else {
      const { accounts } = await wallet.features['standard:connect'].connect();
      account = accounts[0];
      if (!account) throw new SignInError('The wallet has no account to sign in with.');
      const chain = account.chains.find((c) => c.startsWith('solana:')) || 'solana:mainnet';
      const text = createSignInMessageText({ ...input, address: account.address, chainId: chain.replace(/^solana:/, '') });
      [{ signedMessage, signature }] = await wallet.features['solana:signMessage'].signMessage({
        account,
        message: new TextEncoder().encode(text),
      });
    }
  } catch (e) {
    if (e instanceof SignInError) throw e;
    if (e?.code === 4001 || /reject|declin|denied/i.test(e?.message || '')) {
      throw new SignInError('You declined the request in your wallet. Nothing was signed.');
    }
    throw new SignInError(`The wallet could not sign in: ${e?.message || e}`);
  }
  try {
    return await origin.siws(new TextDecoder().decode(signedMessage), bs58.encode(signature), bs58.encode(account.publicKey));
  } catch (e) {
    if (e.code === 'wrong_chain') throw new SignInError('This Solana cluster is not accepted for sign-in here.');
    throw new SignInError(`Sign-in refused: ${e.message}`);
  }
}
