//! Test wallets: deterministic secp256k1 keys that sign EIP-4361 messages as `personal_sign`
//! does, Ed25519 keys for Sign-In With Solana, and the messages wallets print.

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::stack::Stack;

/// A test wallet: a secp256k1 key that signs SIWE messages as `personal_sign` does.
pub struct Wallet {
    key: k256::ecdsa::SigningKey,
    /// EIP-55 address.
    pub address: String,
}

impl Wallet {
    /// A deterministic wallet per `n` (1..=255).
    pub fn new(n: u8) -> Wallet {
        use sha3::Digest;
        let seed = sha3::Keccak256::digest([b"streamgate-test-wallet".as_slice(), &[n]].concat());
        Self::from_seed(&seed)
    }

    /// A wallet nobody used before (for tests that need an owner with no history, on a stack
    /// whose data outlives test runs).
    pub fn fresh() -> Wallet {
        use sha3::Digest;
        let nonce: [u8; 32] = rand::random();
        let seed =
            sha3::Keccak256::digest([b"streamgate-fresh-wallet".as_slice(), &nonce].concat());
        Self::from_seed(&seed)
    }

    fn from_seed(seed: &[u8]) -> Wallet {
        use sha3::Digest;
        let key = k256::ecdsa::SigningKey::from_slice(seed).expect("a hash is a valid scalar");
        let point = key.verifying_key().to_encoded_point(false);
        let hash = sha3::Keccak256::digest(&point.as_bytes()[1..]);
        let mut addr = [0u8; 20];
        addr.copy_from_slice(&hash[12..]);
        Wallet {
            key,
            address: streamgate_auth::siwe::to_eip55(&addr),
        }
    }

    /// The private key, hex with 0x: for a browser test's injected wallet (viem's
    /// `privateKeyToAccount`), never for anything that outlives the test.
    pub fn private_key_hex(&self) -> String {
        format!("0x{}", hex_lower(&self.key.to_bytes()))
    }

    /// `personal_sign`: 65-byte r‖s‖v (v = 27/28), hex with 0x.
    pub fn sign(&self, message: &str) -> String {
        let digest = streamgate_auth::siwe::eip191_hash(message);
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(&digest)
            .expect("signing a 32-byte digest");
        let mut out = sig.to_bytes().to_vec();
        out.push(27 + recid.to_byte());
        format!("0x{}", hex_lower(&out))
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An EIP-4361 message as wallets print it.
pub fn siwe_message(domain: &str, address: &str, uri: &str, chain: u64, nonce: &str) -> String {
    let issued = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    format!(
        "{domain} wants you to sign in with your Ethereum account:\n{address}\n\n\
         Sign in to StreamGate.\n\nURI: {uri}\nVersion: 1\nChain ID: {chain}\nNonce: {nonce}\n\
         Issued At: {issued}"
    )
}

/// A SIWS message for `address` on `cluster`, as wallet-standard wallets print it.
pub fn siws_message(domain: &str, address: &str, uri: &str, cluster: &str, nonce: &str) -> String {
    let issued = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    format!(
        "{domain} wants you to sign in with your Solana account:\n{address}\n\n\
         Sign in to StreamGate.\n\nURI: {uri}\nVersion: 1\nChain ID: {cluster}\nNonce: {nonce}\n\
         Issued At: {issued}"
    )
}

/// The base58 address of a Solana key.
pub fn solana_address(key: &SigningKey) -> String {
    bs58::encode(key.verifying_key().as_bytes()).into_string()
}

/// Signs `key` in at the stack's origin with SIWS on `cluster` (checking the subject is
/// `solana:{cluster}:{address}`); the session token.
pub async fn siws_sign_in(st: &Stack, key: &SigningKey, cluster: &str) -> String {
    let address = solana_address(key);
    let nonce = st.nonce().await;
    let msg = siws_message(st.origin_domain(), &address, &st.origin, cluster, &nonce);
    let sig = key.sign(msg.as_bytes()).to_bytes();
    let r = st
        .http
        .post(format!("{}/v1/auth/siws", st.origin))
        .json(&json!({
            "message": msg,
            "signature": bs58::encode(sig).into_string(),
            "public_key": address,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "siws: {:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["subject"], format!("solana:{cluster}:{address}"));
    v["token"].as_str().unwrap().to_owned()
}
