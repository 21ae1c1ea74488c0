//! Policy evaluation: may this account watch content under this policy?
//!
//! ```text
//! subject ──►
//!   bind: the policy tree → nodes; public/allow and rules the subject cannot meet are decided
//!         now, holding rules become reads, deduplicated and grouped per chain
//!               │
//!               ▼
//!   decided without reads? ──yes──► answer
//!               │
//!               ▼
//!   one read call per chain still needed, every chain concurrently (EvmReader / SolanaReader)
//!               │
//!               ▼
//!   evaluate (three-valued, short-circuit): a read error is "unknown", so
//!   any(yes, unknown) = yes, all(no, unknown) = no, otherwise unknown → EvalError::Unavailable
//! ```
//!
//! Rules and subjects:
//! - A verdict depends on the subject and the policy only, never on the content: it is cached
//!   by (subject, policy hash) and shared by every content with that policy. The content's
//!   owner is always allowed, but that is decided by the caller with [`is_owner`] before any
//!   cache is asked: an owner's "yes" must never be shared with another content that copied the
//!   policy (the wave-2 review's gate bypass), nor a non-owner's "no" refuse the owner.
//! - `public: true` allows anyone.
//! - `allow` compares CAIP-10 accounts exactly, EVM addresses case-insensitively: the chain id
//!   is part of the account, so `eip155:1:0xA…` in the list does not admit `0xA…` signed in on
//!   chain 137 (list every chain the account may sign in on). Solana clusters compare by
//!   reference, so `solana:mainnet:…` matches a subject `solana:5eykt4Us…:…`. [`is_owner`]
//!   compares the same way.
//! - Holding rules read the rule's chain for the subject's own address: an EVM subject (signed in
//!   on any EVM chain) can meet EVM rules on every chain, never Solana ones; a Solana subject
//!   meets Solana rules only.

use futures_util::future::{join, join_all};

use super::{
    chain::{EvmReader, ReadError},
    policy::Policy,
    solana::SolanaReader,
    values::Account,
};

mod bind;
mod judge;
#[cfg(test)]
mod tests;

use bind::{Answers, Outcome, Plan};

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// May watch.
    pub allowed: bool,
    /// Which rule matched (`policy.any[1].erc721: holds a token of 0x… on eip155:137`), or why
    /// none did. For logs and the 403 body; not stable text.
    pub reason: String,
}

/// Why no decision could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The subject is not a CAIP-10 account (not from a verified session).
    #[error("subject is not a CAIP-10 account: {0}")]
    BadSubject(String),
    /// A read the decision depends on failed: fail closed (503), never open.
    #[error("entitlement undecidable: {0}")]
    Unavailable(ReadError),
}

impl EvalError {
    /// Stable snake_case code for JSON bodies and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            EvalError::BadSubject(_) => "bad_subject",
            EvalError::Unavailable(_) => "entitlement_unavailable",
        }
    }
}

/// Whether `subject` (CAIP-10, from a verified session) is the content's `owner` (CAIP-10),
/// compared as [`Account`]s (EVM addresses case-insensitively, Solana clusters by reference).
/// An unparsable subject or owner is nobody's owner.
pub fn is_owner(subject: &str, owner: Option<&str>) -> bool {
    match (Account::parse(subject), owner.map(Account::parse)) {
        (Ok(who), Some(Ok(owner))) => who == owner,
        _ => false,
    }
}

/// Decides whether `subject` (a CAIP-10 account from a verified session) may watch content
/// under `policy`. The answer depends on nothing else, so it may be cached by (subject, policy
/// hash); the owner's right is not part of it (see [`is_owner`]).
///
/// Every chain read the decision needs is gathered first and handed to the reader in one call
/// per chain, all chains concurrently; with `solana` absent, Solana rules are unreadable (and
/// fail closed where they matter). Nothing is read when the policy is decided without reads
/// (`public`, an allow-list hit, rules the subject's kind of account cannot meet).
///
/// # Errors
/// [`EvalError::BadSubject`]; [`EvalError::Unavailable`] when a failed read leaves the
/// decision open: the caller must answer 503, not 403 and never 200.
pub async fn evaluate(
    policy: &Policy,
    subject: &str,
    evm: &dyn EvmReader,
    solana: Option<&dyn SolanaReader>,
) -> Result<Decision, EvalError> {
    let who =
        Account::parse(subject).map_err(|k| EvalError::BadSubject(format!("{subject:?}: {k}")))?;
    let mut plan = Plan::default();
    let tree = plan.bind(policy.root(), &who, "policy".to_owned());
    if let Ok(decision) = decision(tree.eval(None)) {
        return Ok(decision);
    }
    let answers = read(&plan, evm, solana).await;
    decision(tree.eval(Some(&answers))).map_err(|open| {
        // Every read the open part needs was scheduled, so a cause is always known; the
        // fallback only keeps this fail-closed should that ever change.
        EvalError::Unavailable(open.unwrap_or_else(|| ReadError::Unavailable {
            chain: "?".to_owned(),
            last: "a needed read was not made".to_owned(),
        }))
    })
}

/// A decided outcome as a [`Decision`]; an undecided one as its cause.
fn decision(o: Outcome) -> Result<Decision, Option<ReadError>> {
    match o {
        Outcome::Yes(reason) => Ok(Decision {
            allowed: true,
            reason,
        }),
        Outcome::No(reason) => Ok(Decision {
            allowed: false,
            reason,
        }),
        Outcome::Undecided(cause) => Err(cause),
    }
}

/// Issues one call per needed chain, all at once; checks each answers every query.
async fn read(plan: &Plan, evm: &dyn EvmReader, solana: Option<&dyn SolanaReader>) -> Answers {
    let evm_calls = plan.evm.iter().map(|(&id, queries)| {
        let call = evm.read(id, queries.clone());
        let n = queries.len();
        async move { (id, counted(call.await, n, || format!("eip155:{id}"))) }
    });
    let solana_calls = plan.solana.iter().map(|(cluster, queries)| {
        let call = solana.map(|r| r.read(cluster, queries.clone()));
        let n = queries.len();
        async move {
            let res = match call {
                Some(call) => counted(call.await, n, || cluster.to_string()),
                None => Err(ReadError::UnknownChain(cluster.to_string())),
            };
            (cluster.clone(), res)
        }
    });
    let (evm, solana) = join(join_all(evm_calls), join_all(solana_calls)).await;
    Answers {
        evm: evm.into_iter().collect(),
        solana: solana.into_iter().collect(),
    }
}

/// A reader bug (a short or long answer) is treated like an unreachable chain: fail closed.
fn counted<T>(
    res: Result<Vec<T>, ReadError>,
    n: usize,
    chain: impl FnOnce() -> String,
) -> Result<Vec<T>, ReadError> {
    let answers = res?;
    if answers.len() != n {
        return Err(ReadError::Unavailable {
            chain: chain(),
            last: format!("reader gave {} answers to {n} queries", answers.len()),
        });
    }
    Ok(answers)
}
