//! The policy parser: JSON value → [`Rule`] tree, with every error naming its JSON path.

use serde_json::{Map, Value};

use super::{
    CollectionRule, Erc20Rule, Erc721Rule, Erc1155Rule, KnownChains, MAX_ALLOW, MAX_DEPTH,
    MAX_READS, MAX_RULES, PolicyError, PolicyErrorKind as K, Rule, SplRule,
};
use crate::{
    chain::EvmAddress,
    values::{Account, Chain, SolanaChain, Uint256, parse_evm_address, parse_solana_key},
};

/// Walks one policy; counts rules and reads against the limits.
pub(super) struct Parser<'k> {
    known: &'k KnownChains,
    rules: usize,
    reads: usize,
}

type Res<T> = Result<T, PolicyError>;

fn err(path: &str, kind: K) -> PolicyError {
    PolicyError {
        path: path.to_owned(),
        kind,
    }
}

impl<'k> Parser<'k> {
    pub(super) fn new(known: &'k KnownChains) -> Self {
        Self {
            known,
            rules: 0,
            reads: 0,
        }
    }

    pub(super) fn policy(mut self, v: &Value) -> Res<Rule> {
        self.rule(v, "policy", 1)
    }

    fn rule(&mut self, v: &Value, path: &str, depth: usize) -> Res<Rule> {
        if depth > MAX_DEPTH {
            return Err(err(path, K::TooDeep(MAX_DEPTH)));
        }
        self.rules += 1;
        if self.rules > MAX_RULES {
            return Err(err(path, K::TooManyRules(MAX_RULES)));
        }
        let obj = v.as_object().ok_or_else(|| err(path, K::NotARule))?;
        let mut entries = obj.iter();
        let (Some((key, body)), None) = (entries.next(), entries.next()) else {
            return Err(err(path, K::NotARule));
        };
        let path = format!("{path}.{key}");
        let path = path.as_str();
        Ok(match key.as_str() {
            "public" => Rule::Public(
                body.as_bool()
                    .ok_or_else(|| err(path, K::WrongType("true or false")))?,
            ),
            "any" => Rule::Any(self.rules_of(body, path, depth)?),
            "all" => Rule::All(self.rules_of(body, path, depth)?),
            "allow" => Rule::Allow(self.allow(body, path)?),
            "erc721" => Rule::Erc721(self.erc721(body, path)?),
            "erc1155" => Rule::Erc1155(self.erc1155(body, path)?),
            "erc20" => Rule::Erc20(self.erc20(body, path)?),
            "spl" => Rule::Spl(self.spl(body, path)?),
            "metaplex_collection" => Rule::MetaplexCollection(self.collection(body, path)?),
            _ => return Err(err(path, K::UnknownRule)),
        })
    }

    fn rules_of(&mut self, v: &Value, path: &str, depth: usize) -> Res<Vec<Rule>> {
        let items = list(v, path, MAX_RULES)?;
        items
            .iter()
            .enumerate()
            .map(|(i, r)| self.rule(r, &format!("{path}[{i}]"), depth + 1))
            .collect()
    }

    fn allow(&mut self, v: &Value, path: &str) -> Res<Vec<Account>> {
        let items = list(v, path, MAX_ALLOW)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{path}[{i}]");
            let s = string(item, &path)?;
            let account = Account::parse(s).map_err(|k| err(&path, k))?;
            self.known
                .check(account.chain())
                .map_err(|k| err(&path, k))?;
            out.push(account);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn erc721(&mut self, v: &Value, path: &str) -> Res<Erc721Rule> {
        let f = fields(
            v,
            path,
            &["chain", "contract", "token_ids"],
            "chain, contract, token_ids",
        )?;
        let chain = self.evm_chain(f, path)?;
        let contract = address(f, path)?;
        let token_ids = match f.get("token_ids") {
            None => {
                self.add_reads(1, path)?;
                None
            }
            Some(v) => {
                let path = format!("{path}.token_ids");
                let items = list(v, &path, MAX_READS)?;
                let mut ids = items
                    .iter()
                    .enumerate()
                    .map(|(i, id)| uint256(id, &format!("{path}[{i}]")))
                    .collect::<Res<Vec<_>>>()?;
                ids.sort();
                ids.dedup();
                self.add_reads(ids.len(), &path)?;
                Some(ids)
            }
        };
        Ok(Erc721Rule {
            chain,
            contract,
            token_ids,
        })
    }

    fn erc1155(&mut self, v: &Value, path: &str) -> Res<Erc1155Rule> {
        let f = fields(
            v,
            path,
            &["chain", "contract", "token_id", "min_balance"],
            "chain, contract, token_id, min_balance",
        )?;
        let chain = self.evm_chain(f, path)?;
        let contract = address(f, path)?;
        let token_id = uint256(required(f, path, "token_id")?, &format!("{path}.token_id"))?;
        let min_balance = min_uint256(f, path, Some(Uint256::ONE))?;
        self.add_reads(1, path)?;
        Ok(Erc1155Rule {
            chain,
            contract,
            min_balance,
            token_id,
        })
    }

    fn erc20(&mut self, v: &Value, path: &str) -> Res<Erc20Rule> {
        let f = fields(
            v,
            path,
            &["chain", "contract", "min_balance"],
            "chain, contract, min_balance",
        )?;
        let chain = self.evm_chain(f, path)?;
        let contract = address(f, path)?;
        let min_balance = min_uint256(f, path, None)?;
        self.add_reads(1, path)?;
        Ok(Erc20Rule {
            chain,
            contract,
            min_balance,
        })
    }

    fn spl(&mut self, v: &Value, path: &str) -> Res<SplRule> {
        let f = fields(
            v,
            path,
            &["cluster", "mint", "min_balance"],
            "cluster, mint, min_balance",
        )?;
        let cluster = self.cluster(f, path)?;
        let mint = key(f, path, "mint")?;
        let min_balance = match f.get("min_balance") {
            None => 1,
            Some(v) => {
                let path = format!("{path}.min_balance");
                let n = u64_of(v, &path)?;
                if n == 0 {
                    return Err(err(&path, K::Zero));
                }
                n
            }
        };
        self.add_reads(1, path)?;
        Ok(SplRule {
            cluster,
            min_balance,
            mint,
        })
    }

    fn collection(&mut self, v: &Value, path: &str) -> Res<CollectionRule> {
        let f = fields(v, path, &["cluster", "collection"], "cluster, collection")?;
        let cluster = self.cluster(f, path)?;
        let collection = key(f, path, "collection")?;
        self.add_reads(1, path)?;
        Ok(CollectionRule {
            cluster,
            collection,
        })
    }

    fn evm_chain(&self, f: &Map<String, Value>, path: &str) -> Res<u64> {
        let v = required(f, path, "chain")?;
        let path = format!("{path}.chain");
        let s = string(v, &path)?;
        match self.known_chain(s, &path)? {
            Chain::Evm(id) => Ok(id),
            Chain::Solana(_) => Err(err(&path, K::NotEvmChain)),
        }
    }

    fn cluster(&self, f: &Map<String, Value>, path: &str) -> Res<SolanaChain> {
        let v = required(f, path, "cluster")?;
        let path = format!("{path}.cluster");
        let s = string(v, &path)?;
        if !s.starts_with("solana:") {
            return Err(err(&path, K::NotSolanaCluster));
        }
        SolanaChain::parse(s).map_err(|k| err(&path, k))?;
        match self.known_chain(s, &path)? {
            Chain::Solana(c) => Ok(c),
            Chain::Evm(_) => Err(err(&path, K::NotSolanaCluster)),
        }
    }

    fn known_chain(&self, s: &str, path: &str) -> Res<Chain> {
        let chain = Chain::parse(s).map_err(|k| err(path, k))?;
        self.known.check(chain).map_err(|k| err(path, k))
    }

    fn add_reads(&mut self, n: usize, path: &str) -> Res<()> {
        self.reads += n;
        if self.reads > MAX_READS {
            return Err(err(path, K::TooManyReads(MAX_READS)));
        }
        Ok(())
    }
}

/// The rule's body as an object with only `allowed` keys.
fn fields<'v>(
    v: &'v Value,
    path: &str,
    allowed: &[&str],
    shown: &'static str,
) -> Res<&'v Map<String, Value>> {
    let obj = v
        .as_object()
        .ok_or_else(|| err(path, K::WrongType("an object")))?;
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(err(&format!("{path}.{k}"), K::UnknownField(shown)));
    }
    Ok(obj)
}

fn required<'v>(f: &'v Map<String, Value>, path: &str, key: &str) -> Res<&'v Value> {
    f.get(key)
        .ok_or_else(|| err(&format!("{path}.{key}"), K::Missing))
}

fn string<'v>(v: &'v Value, path: &str) -> Res<&'v str> {
    v.as_str()
        .ok_or_else(|| err(path, K::WrongType("a string")))
}

fn list<'v>(v: &'v Value, path: &str, max: usize) -> Res<&'v Vec<Value>> {
    let items = v
        .as_array()
        .ok_or_else(|| err(path, K::WrongType("an array")))?;
    if items.is_empty() {
        return Err(err(path, K::Empty));
    }
    if items.len() > max {
        return Err(err(path, K::TooLong(max)));
    }
    Ok(items)
}

fn address(f: &Map<String, Value>, path: &str) -> Res<EvmAddress> {
    let v = required(f, path, "contract")?;
    let path = format!("{path}.contract");
    parse_evm_address(string(v, &path)?).map_err(|k| err(&path, k))
}

fn key(f: &Map<String, Value>, path: &str, name: &str) -> Res<[u8; 32]> {
    let v = required(f, path, name)?;
    let path = format!("{path}.{name}");
    parse_solana_key(string(v, &path)?).map_err(|k| err(&path, k))
}

/// A decimal string, or a JSON integer that fits a u64.
fn uint256(v: &Value, path: &str) -> Res<Uint256> {
    match v {
        Value::String(s) => s.parse().map_err(|k| err(path, k)),
        Value::Number(n) => n
            .as_u64()
            .map(Uint256::from_u64)
            .ok_or_else(|| err(path, K::NotUint256)),
        _ => Err(err(path, K::NotUint256)),
    }
}

fn u64_of(v: &Value, path: &str) -> Res<u64> {
    match v {
        Value::String(s) if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) => {
            s.parse().map_err(|_| err(path, K::NotU64))
        }
        Value::Number(n) => n.as_u64().ok_or_else(|| err(path, K::NotU64)),
        _ => Err(err(path, K::NotU64)),
    }
}

/// `min_balance`: at least 1; `default` when absent, required when `default` is `None`.
fn min_uint256(f: &Map<String, Value>, path: &str, default: Option<Uint256>) -> Res<Uint256> {
    let v = match (f.get("min_balance"), default) {
        (None, Some(d)) => return Ok(d),
        (None, None) => return Err(err(&format!("{path}.min_balance"), K::Missing)),
        (Some(v), _) => v,
    };
    let path = format!("{path}.min_balance");
    let n = uint256(v, &path)?;
    if n == Uint256::ZERO {
        return Err(err(&path, K::Zero));
    }
    Ok(n)
}
