// A content's policy in words, for the refusal a viewer sees.

const CHAINS = { 'eip155:1': 'Ethereum', 'eip155:31337': 'the local chain (31337)', 'eip155:8453': 'Base', 'eip155:137': 'Polygon' };

const chainName = (c) => CHAINS[c] || c;
const short = (a) => (typeof a === 'string' && a.length > 14 ? `${a.slice(0, 6)}…${a.slice(-4)}` : a);

/** "holders of an ERC-721 token of 0x12…cdef on Ethereum", etc. */
export function describe(policy) {
  if (!policy || typeof policy !== 'object') return 'viewers this video is restricted to';
  if (policy.public) return 'everyone';
  if (Array.isArray(policy.allow)) return 'the wallets on its allowlist';
  if (policy.erc721) return `holders of an ERC-721 token of ${short(policy.erc721.contract)} on ${chainName(policy.erc721.chain)}`;
  if (policy.erc1155) return `holders of token #${policy.erc1155.token_id} of the ERC-1155 ${short(policy.erc1155.contract)} on ${chainName(policy.erc1155.chain)}`;
  if (policy.erc20) return `holders of at least ${policy.erc20.min_balance} of the ERC-20 ${short(policy.erc20.contract)} on ${chainName(policy.erc20.chain)}`;
  if (policy.spl) return `holders of at least ${policy.spl.min_balance ?? 1} of the Solana token ${short(policy.spl.mint)} on ${policy.spl.cluster}`;
  if (policy.metaplex_collection) return `holders of an NFT of the verified collection ${short(policy.metaplex_collection.collection)} on ${policy.metaplex_collection.cluster}`;
  if (Array.isArray(policy.any)) return policy.any.map(describe).join(', or ');
  if (Array.isArray(policy.all)) return policy.all.map(describe).join(', and ');
  return 'viewers this video is restricted to';
}
