#!/usr/bin/env bash
# Offline checks of everything under deploy/: every kustomization builds and its output passes
# `kubernetes-validate --strict` for Kubernetes 1.30 with no output at all (warnings fail too);
# custom resources (KEDA), which have no schema there, are checked against what StreamGate
# needs of them; Prometheus rules pass `promtool check rules`; the Grafana dashboard is JSON
# whose queries name metrics the services export.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tools from scripts/setup.sh: the project's venv (kubernetes-validate, PyYAML), promtool.
export PATH="$HOME/.cache/streamgate/venv/bin:$PATH"
fail=0
for dir in deploy/kubernetes/base deploy/kubernetes/overlays/*/; do
  dir=${dir%/}
  built=$(mktemp)
  kubectl kustomize "$dir" >"$built"
  # Core kinds: strict schema validation, any output is a failure.
  core=$(mktemp)
  python3 - "$built" "$core" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
core = [d for d in docs if "." not in d["apiVersion"].split("/")[0] or d["apiVersion"].split("/")[0].endswith(".k8s.io")]
custom = [d for d in docs if d not in core]
deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
for d in custom:
    if d["apiVersion"] != "keda.sh/v1alpha1" or d["kind"] != "ScaledObject":
        sys.exit(f"unexpected custom resource {d['apiVersion']} {d['kind']}")
    spec = d["spec"]
    target = spec["scaleTargetRef"]["name"]
    if target not in deployments:
        sys.exit(f"ScaledObject {d['metadata']['name']}: no Deployment {target}")
    for t in spec["triggers"]:
        m = t["metadata"]
        if t["type"] != "redis-streams" or m["stream"] != "sg:jobs" or m["consumerGroup"] != "transcoders":
            sys.exit(f"ScaledObject trigger must follow sg:jobs / transcoders: {t}")
        if int(m["lagCount"]) < 1:
            sys.exit("lagCount must be at least 1")
    if not 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]:
        sys.exit("replica bounds")
yaml.safe_dump_all(core, open(sys.argv[2], "w"))
PY
  out=$(kubernetes-validate --strict -k 1.30.0 --quiet "$core" 2>&1) || true
  if [ -n "$out" ]; then
    echo "deploy-check: $dir:" >&2
    echo "$out" >&2
    fail=1
  else
    echo "deploy-check: $dir ok ($(grep -c '^kind:' "$built") objects)"
  fi
  rm -f "$built" "$core"
done
# The ConfigMaps' configs load with the binaries' own --check-config (secrets from dummy
# environment values; the TLS files, which only exist in the pod, from a throwaway pair).
BIN_DIR=${STREAMGATE_BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/streamgate/target}/debug}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=edge \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
secret=$(printf 'ab%.0s' $(seq 1 32))
for svc in proxy origin transcoder; do
  tls=()
  [ "$svc" = proxy ] && tls=("STREAMGATE__SERVER__TLS={ listen = \"0.0.0.0:8443\", certificates = [{ cert = \"$tmp/cert.pem\", key = \"$tmp/key.pem\" }] }")
  if ! out=$(env "${tls[@]}" STREAMGATE_EDGE_KEY="$secret" STREAMGATE_EDGE_ADMIN_TOKEN="$secret" \
      STREAMGATE_TOKEN_KEY_K1="$secret" STREAMGATE_SESSION_KEY_S1="$secret" STREAMGATE_KEK_1="$secret" \
      STREAMGATE_S3_ACCESS_KEY=access STREAMGATE_S3_SECRET_KEY=secret \
      STREAMGATE_EVM_RPC_1=https://rpc.example.com \
      "$BIN_DIR/streamgate-$svc" --config "deploy/kubernetes/base/config/$svc.toml" --check-config 2>&1); then
    echo "deploy-check: deploy/kubernetes/base/config/$svc.toml: $out" >&2
    fail=1
  else
    echo "deploy-check: deploy/kubernetes/base/config/$svc.toml: $out"
  fi
done
# systemd units: systemd-analyze finds nothing to say about them (binaries: the built ones).
mkdir -p "$tmp/units"
for u in deploy/systemd/*.service; do
  sed "s|/usr/local/bin/|$BIN_DIR/|g" "$u" >"$tmp/units/$(basename "$u")"
done
out=$(cd "$tmp/units" && systemd-analyze verify ./*.service 2>&1) || true
if [ -n "$out" ]; then echo "deploy-check: systemd units: $out" >&2; fail=1; else echo "deploy-check: systemd units ok"; fi
if [ -d deploy/monitoring ]; then
  promtool check rules deploy/monitoring/alerts.yaml
  python3 scripts/dashboard-check.py deploy/monitoring/grafana-dashboard.json
fi
exit "$fail"
