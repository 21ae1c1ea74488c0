//! `SolanaRpcReader` against a real offline Surfnet (Surfpool's embedded Solana runtime) per
//! test: SPL token balances before and after a mint, collection membership through Metaplex
//! metadata accounts (written with Surfnet's `surfnet_setAccount`), endpoint failover and
//! failing closed.
//!
//! Needs `make setup` (the fixture scripts' node modules under scripts/solana).

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use ed25519_dalek::SigningKey;
use streamgate_entitlements::{
    ReadError, SolanaAnswer, SolanaChain, SolanaClusters, SolanaQuery, SolanaReader,
    SolanaRpcReader, solana_rpc::metadata_pda,
};

fn fixture_dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../scripts/solana")
}

/// A running `node scripts/solana/surfnet.mjs`, killed on drop.
struct Surfnet {
    child: Child,
    rpc: String,
    ws: String,
}

impl Surfnet {
    fn start() -> Self {
        let mut child = Command::new("node")
            .arg(fixture_dir().join("surfnet.mjs"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node scripts/solana/surfnet.mjs (run make setup)");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut next = || {
            lines
                .next()
                .and_then(Result::ok)
                .expect("surfnet.mjs printed its urls")
        };
        let (rpc, ws) = (next(), next());
        assert!(
            rpc.starts_with("http://") && ws.starts_with("ws://"),
            "{rpc} {ws}"
        );
        Self { child, rpc, ws }
    }

    /// Creates a mint (decimals 0), mints 1 to `owner`'s associated token account.
    fn mint_one_to(&self, owner: &[u8; 32]) -> [u8; 32] {
        let out = Command::new("node")
            .arg(fixture_dir().join("mint.mjs"))
            .args([&self.rpc, &self.ws, &bs58::encode(owner).into_string()])
            .output()
            .expect("run node scripts/solana/mint.mjs");
        assert!(
            out.status.success(),
            "mint.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mint = String::from_utf8(out.stdout).expect("utf-8 mint address");
        bs58::decode(mint.trim())
            .into_vec()
            .expect("base58 mint")
            .try_into()
            .expect("32-byte mint")
    }
}

impl Surfnet {
    /// Writes `mint`'s Metaplex metadata naming `collection` (verified or not); returns the
    /// metadata PDA that web3.js derived.
    fn set_metadata(&self, mint: &[u8; 32], collection: &[u8; 32], verified: bool) -> [u8; 32] {
        let out = Command::new("node")
            .arg(fixture_dir().join("metadata.mjs"))
            .args([
                self.rpc.clone(),
                bs58::encode(mint).into_string(),
                bs58::encode(collection).into_string(),
                verified.to_string(),
            ])
            .output()
            .expect("run node scripts/solana/metadata.mjs");
        assert!(
            out.status.success(),
            "metadata.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pda = String::from_utf8(out.stdout).expect("utf-8 pda");
        bs58::decode(pda.trim())
            .into_vec()
            .expect("base58 pda")
            .try_into()
            .expect("32-byte pda")
    }
}

impl Drop for Surfnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh ed25519 wallet address (on the curve, so it can own an associated token account).
fn wallet() -> [u8; 32] {
    let seed: [u8; 32] = rand::random();
    SigningKey::from_bytes(&seed).verifying_key().to_bytes()
}

fn localnet() -> SolanaChain {
    SolanaChain::parse("solana:localnet").expect("localnet parses")
}

fn reader(urls: Vec<String>, timeout: Duration) -> SolanaRpcReader {
    SolanaRpcReader::new(SolanaClusters {
        clusters: HashMap::from([(localnet(), urls)]),
        timeout,
    })
    .expect("valid reader config")
}

/// A loopback port nothing listens on.
fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = l.local_addr().expect("bound socket has an address").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

fn balance(owner: [u8; 32], mint: [u8; 32]) -> SolanaQuery {
    SolanaQuery::TokenBalance { owner, mint }
}

#[tokio::test]
async fn token_balances_of_holders_and_others() {
    let net = Surfnet::start();
    let (holder, other) = (wallet(), wallet());
    let mint = net.mint_one_to(&holder);
    let r = reader(vec![net.rpc.clone()], Duration::from_secs(5));
    let answers = r
        .read(
            &localnet(),
            vec![balance(holder, mint), balance(other, mint)],
        )
        .await
        .expect("surfnet answers");
    assert_eq!(
        answers,
        vec![SolanaAnswer::Amount(1), SolanaAnswer::Amount(0)]
    );

    // A second mint to the same holder is a different token: still 1 of each.
    let mint2 = net.mint_one_to(&holder);
    let answers = r
        .read(
            &localnet(),
            vec![
                balance(holder, mint2),
                balance(holder, mint),
                balance(other, mint2),
            ],
        )
        .await
        .expect("surfnet answers");
    assert_eq!(
        answers,
        vec![
            SolanaAnswer::Amount(1),
            SolanaAnswer::Amount(1),
            SolanaAnswer::Amount(0)
        ]
    );
    assert!(r.read(&localnet(), vec![]).await.expect("empty").is_empty());
}

#[tokio::test]
async fn fails_over_from_a_dead_endpoint() {
    let net = Surfnet::start();
    let holder = wallet();
    let mint = net.mint_one_to(&holder);
    let r = reader(
        vec![closed_port_url(), net.rpc.clone()],
        Duration::from_secs(5),
    );
    let answers = r
        .read(&localnet(), vec![balance(holder, mint)])
        .await
        .expect("the second endpoint answers");
    assert_eq!(answers, vec![SolanaAnswer::Amount(1)]);
    assert_eq!(r.rpc_calls(), 2, "one failed attempt, one answer");
}

#[tokio::test]
async fn fails_closed_when_every_endpoint_is_dead() {
    let r = reader(
        vec![closed_port_url(), closed_port_url()],
        Duration::from_secs(2),
    );
    let e = r
        .read(&localnet(), vec![balance(wallet(), wallet())])
        .await
        .unwrap_err();
    match &e {
        ReadError::Unavailable { chain, last } => {
            assert_eq!(chain, "solana:localnet");
            assert!(last.starts_with("endpoint 1:"), "{last}");
            assert!(!last.contains("127.0.0.1"), "url not scrubbed: {last}");
        }
        other => panic!("want Unavailable, got {other:?}"),
    }
    // Two rounds over both endpoints (connection refused is not a timeout).
    assert_eq!(r.rpc_calls(), 4);

    let unknown = SolanaChain::parse("solana:devnet").expect("devnet parses");
    assert!(matches!(
        r.read(&unknown, vec![]).await,
        Err(ReadError::UnknownChain(_))
    ));
}

#[tokio::test]
async fn collection_membership_through_metaplex_metadata() {
    let net = Surfnet::start();
    let (holder, unverified_holder, other) = (wallet(), wallet(), wallet());
    let (collection, elsewhere) = (wallet(), wallet());
    let member = |owner, collection| SolanaQuery::CollectionMember { owner, collection };

    let nft = net.mint_one_to(&holder);
    let pda = net.set_metadata(&nft, &collection, true);
    assert_eq!(pda, metadata_pda(&nft), "the PDA matches web3.js");
    let unverified = net.mint_one_to(&unverified_holder);
    net.set_metadata(&unverified, &collection, false);
    // An NFT without metadata is held too: it must not matter.
    net.mint_one_to(&holder);

    let r = reader(vec![net.rpc.clone()], Duration::from_secs(5));
    let answers = r
        .read(
            &localnet(),
            vec![
                member(holder, collection),
                member(holder, elsewhere),
                member(unverified_holder, collection),
                member(other, collection),
                balance(holder, nft),
            ],
        )
        .await
        .expect("surfnet answers");
    assert_eq!(
        answers,
        vec![
            SolanaAnswer::Bool(true),
            SolanaAnswer::Bool(false),
            SolanaAnswer::Bool(false),
            SolanaAnswer::Bool(false),
            SolanaAnswer::Amount(1),
        ]
    );
}
