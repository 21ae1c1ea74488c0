//! Judging a bound holding rule by the reader's answers.

use super::bind::{EvmNode, EvmTest, Outcome, SolanaNode, amount};
use crate::{
    chain::{EvmAnswer, EvmQuery, ReadError},
    solana::{SolanaAnswer, SolanaQuery},
    values::Uint256,
};

fn bad_answer(chain: String, what: &str) -> Outcome {
    Outcome::Undecided(Some(ReadError::Unavailable {
        chain,
        last: format!("reader answered {what} to a query of another type"),
    }))
}

impl EvmNode {
    pub(super) fn judge(&self, got: &[EvmAnswer]) -> Outcome {
        let chain = || format!("eip155:{}", self.chain);
        let answers = self.slots.iter().map(|&i| got.get(i));
        match self.test {
            EvmTest::OwnerIs(owner) => {
                let mut broken = None;
                for (q, a) in self.queries.iter().zip(answers) {
                    match a {
                        Some(EvmAnswer::Address(a)) if *a == owner => {
                            let EvmQuery::Erc721OwnerOf { token_id, .. } = q else {
                                continue;
                            };
                            let id = Uint256(*token_id);
                            return Outcome::Yes(format!(
                                "{}: owns token {id} of {}",
                                self.path, self.what
                            ));
                        }
                        Some(EvmAnswer::Address(_) | EvmAnswer::Reverted) => {}
                        Some(EvmAnswer::Uint(_)) => broken = Some(bad_answer(chain(), "a uint")),
                        None => broken = Some(Outcome::Undecided(None)),
                    }
                }
                broken.unwrap_or_else(|| {
                    Outcome::No(format!(
                        "{}: owns none of the listed tokens of {}",
                        self.path, self.what
                    ))
                })
            }
            EvmTest::AtLeast(min) => {
                let holds = match answers.into_iter().next().flatten() {
                    Some(EvmAnswer::Uint(v)) => Uint256(*v) >= min,
                    Some(EvmAnswer::Reverted) => false,
                    Some(EvmAnswer::Address(_)) => return bad_answer(chain(), "an address"),
                    None => return Outcome::Undecided(None),
                };
                let amount = amount(min, min == Uint256::ONE);
                verdict(holds, &self.path, &amount, &self.what)
            }
        }
    }
}

impl SolanaNode {
    pub(super) fn judge(&self, got: &[SolanaAnswer]) -> Outcome {
        let a = self.slot.and_then(|i| got.get(i));
        let holds = match (&self.query, a) {
            (SolanaQuery::TokenBalance { .. }, Some(SolanaAnswer::Amount(v))) => *v >= self.min,
            (SolanaQuery::CollectionMember { .. }, Some(SolanaAnswer::Bool(b))) => *b,
            (_, None) => return Outcome::Undecided(None),
            (_, Some(_)) => return bad_answer(self.cluster.to_string(), "another kind of answer"),
        };
        let amount = match self.query {
            SolanaQuery::TokenBalance { .. } => amount(self.min, self.min == 1),
            SolanaQuery::CollectionMember { .. } => "an NFT".to_owned(),
        };
        verdict(holds, &self.path, &amount, &self.what)
    }
}

fn verdict(holds: bool, path: &str, amount: &str, what: &str) -> Outcome {
    if holds {
        Outcome::Yes(format!("{path}: holds {amount} of {what}"))
    } else {
        Outcome::No(format!("{path}: does not hold {amount} of {what}"))
    }
}
