//! StreamGate's end-to-end suites live in `tests/`, one binary per suite (modules inside):
//! `edge`, `grants`, `media`, `players`, `loadtest`, `security`. They run against the local
//! stack that `make test` starts (`scripts/stack.sh up`), with what they share in
//! `streamgate-testkit`. This library is empty.
