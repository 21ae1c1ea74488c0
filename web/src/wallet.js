// Sign-In with Ethereum through an injected EIP-1193 provider (window.ethereum, as MetaMask and
// Rabby expose it). The message is built by viem's EIP-4361 builder; origin checks every field.

import { createSiweMessage } from 'viem/siwe';
import { getAddress } from 'viem';
import { origin } from './api.js';

/** A sign-in failure with words for a person. */
export class SignInError extends Error {}

export function hasEthereum() {
  return typeof window.ethereum?.request === 'function';
}

/** Signs in with the injected wallet; returns `{token, subject, expires_at}`. */
export async function signInWithEthereum() {
  const eth = window.ethereum;
  if (!hasEthereum()) {
    throw new SignInError('No Ethereum wallet found in this browser. Install MetaMask or Rabby and reload.');
  }
  let accounts;
  let chainHex;
  try {
    accounts = await eth.request({ method: 'eth_requestAccounts' });
    chainHex = await eth.request({ method: 'eth_chainId' });
  } catch (e) {
    throw refusal(e, 'The wallet did not share an account.');
  }
  if (!accounts?.length) throw new SignInError('The wallet has no account to sign in with.');
  const address = getAddress(accounts[0]);
  const chainId = Number.parseInt(chainHex, 16);
  const { nonce } = await origin.nonce();
  const now = new Date();
  const message = createSiweMessage({
    domain: location.host,
    address,
    statement: 'Sign in to StreamGate.',
    uri: location.origin,
    version: '1',
    chainId,
    nonce,
    issuedAt: now,
    expirationTime: new Date(now.getTime() + 10 * 60 * 1000),
  });
  let signature;
  try {
    signature = await eth.request({ method: 'personal_sign', params: [toHex(message), address] });
  } catch (e) {
    throw refusal(e, 'The wallet could not sign the message.');
  }
  try {
    return await origin.siwe(message, signature);
  } catch (e) {
    if (e.code === 'wrong_chain') {
      throw new SignInError(`Chain ${chainId} is not accepted for sign-in here. Switch your wallet to an accepted chain and try again.`);
    }
    throw new SignInError(`Sign-in refused: ${e.message}`);
  }
}

function refusal(e, fallback) {
  // EIP-1193: 4001 is the user saying no.
  if (e && e.code === 4001) return new SignInError('You declined the request in your wallet. Nothing was signed.');
  return new SignInError(`${fallback} ${e?.message || ''}`.trim());
}

function toHex(text) {
  return `0x${Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, '0')).join('')}`;
}
