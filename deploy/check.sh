#!/usr/bin/env bash
# Static checks of the deployment files under deploy/ (and docs/deployment.md), runnable from the
# repository root or anywhere else: bash deploy/check.sh
#
# Checks what can be checked without a container engine, a cluster or a running systemd:
#   - every YAML file under deploy/ parses (multi-document aware);
#   - the example configuration files only use keys of config/default.toml, and every RECON_*
#     variable named in deploy/ and docs/deployment.md maps to such a key;
#   - kubectl kustomize deploy/k8s renders, and the rendered objects hold together (probes, ports,
#     security context, the ConfigMap and Secret the Deployment refers to, selectors);
#   - systemd-analyze verify accepts the unit (with ExecStart pointed at an existing executable
#     when the binary is not installed here), and its offline security exposure stays low;
#   - the Prometheus rules are well-formed, use only the daemon's metric names, and are copied
#     verbatim into docs/deployment.md; promtool checks and unit-tests them when installed;
#   - the Dockerfile and docker-compose.yml are sane; `docker compose config` when an engine runs;
#   - the Grafana dashboard (deploy/grafana/rotessa-recon.json) parses, every panel uses the
#     $datasource variable and has a description, every query names only the daemon's metrics and
#     filters on instance=~"$instance", and its queries parse (promtool, when installed);
#   - the optional Prometheus Operator component (deploy/k8s/components/prometheus-operator): its
#     ServiceMonitor selects the metrics Service and port, its PrometheusRule holds exactly the
#     groups of prometheus-rules.yaml, and the example overlay deploy/overlays/prometheus-operator
#     renders the base plus those two objects;
#   - the optional migration Job component (deploy/overlays/migrate-job) renders a Job and a
#     daemon run with --no-migrate; every alert has a runbook_url naming a section of
#     docs/deployment.md.
# With CHECK_METRICS_SCRAPE=FILE (a real /metrics scrape, Prometheus text format), every metric the
# dashboard names must also appear in that scrape.
# A tool that is missing is skipped with a message; any other problem fails the script (exit 1).
# CHECK_REQUIRE="promtool shellcheck" (CI sets it) turns those tools' skips into failures.
set -euo pipefail
# A relative CHECK_METRICS_SCRAPE is relative to the caller's directory, not the repository root.
scrape=${CHECK_METRICS_SCRAPE:-}
if [ -n "$scrape" ] && [ "${scrape#/}" = "$scrape" ]; then
    scrape="$PWD/$scrape"
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failures=0
skips=0
ok() { echo "ok:   $*"; }
skip() { echo "skip: $*"; skips=$((skips + 1)); }
# A missing tool CHECK_REQUIRE names is a failure, not a skip.
skip_tool() {
    local tool=$1
    shift
    case " ${CHECK_REQUIRE:-} " in
    *" $tool "*) fail "$tool is required (CHECK_REQUIRE) but not installed: $*" ;;
    *) skip "$*" ;;
    esac
}
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- kustomize -------------------------------------------------------------------------------------
rendered=""
operator_rendered=""
if command -v kubectl >/dev/null 2>&1; then
    if kubectl kustomize deploy/k8s >"$tmp/k8s.yaml" 2>"$tmp/kustomize.err"; then
        rendered="$tmp/k8s.yaml"
        ok "kubectl kustomize deploy/k8s renders ($(grep -c '^kind:' "$rendered") objects)"
    else
        fail "kubectl kustomize deploy/k8s: $(cat "$tmp/kustomize.err")"
    fi
    overlay=deploy/overlays/prometheus-operator
    if kubectl kustomize "$overlay" >"$tmp/operator.yaml" 2>"$tmp/kustomize.err"; then
        operator_rendered="$tmp/operator.yaml"
        ok "kubectl kustomize $overlay renders ($(grep -c '^kind:' "$operator_rendered") objects)"
    else
        fail "kubectl kustomize $overlay: $(cat "$tmp/kustomize.err")"
    fi
    overlay=deploy/overlays/migrate-job
    if kubectl kustomize "$overlay" >"$tmp/migrate.yaml" 2>"$tmp/kustomize.err"; then
        if grep -q '^kind: Job' "$tmp/migrate.yaml" \
            && grep -q -- '- --no-migrate' "$tmp/migrate.yaml" \
            && grep -q 'key: database-url-direct' "$tmp/migrate.yaml"; then
            ok "kubectl kustomize $overlay renders a migration Job and a daemon run with --no-migrate"
        else
            fail "$overlay: expected a Job, the daemon's --no-migrate and the key database-url-direct"
        fi
    else
        fail "kubectl kustomize $overlay: $(cat "$tmp/kustomize.err")"
    fi
else
    skip "kubectl not installed: kustomize builds not checked"
fi

# --- YAML, TOML, manifests, rules, dashboard, compose, Dockerfile (python3) ------------------------
have_yaml=0
if command -v python3 >/dev/null 2>&1; then
    if python3 -c 'import yaml' 2>/dev/null; then
        have_yaml=1
    elif python3 -m pip install --quiet --disable-pip-version-check pyyaml >/dev/null 2>&1 \
        && python3 -c 'import yaml' 2>/dev/null; then
        have_yaml=1
        ok "installed PyYAML with pip"
    fi
fi
if [ "$have_yaml" = 1 ]; then
    if ! python3 - "$rendered" "$operator_rendered" "$tmp" "$scrape" <<'PY'
import glob, json, os, re, sys, tomllib
import yaml

rendered_path, operator_path, tmp_dir, scrape_path = sys.argv[1:5]
failures = 0
skips = 0


def ok(msg):
    print(f"ok:   {msg}")


def fail(msg):
    global failures
    failures += 1
    print(f"FAIL: {msg}")


def skip(msg):
    global skips
    skips += 1
    print(f"skip: {msg}")


def check(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        fail(msg + (f": {detail}" if detail else ""))
    return cond


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# The daemon's metrics, read from the catalog the code registers them from
# (src/telemetry/catalog.rs); a histogram also has _bucket, _sum and _count.
CATALOG = re.findall(r'family\(\s*"(rotessa_[a-z_]+)",\s*Kind::(\w+)', read("src/telemetry/catalog.rs"))
METRICS = {name for name, _ in CATALOG}
HISTOGRAMS = {name for name, kind in CATALOG if kind == "Histogram"}
if len(METRICS) < 30 or "rotessa_leader" not in METRICS:
    fail(f"src/telemetry/catalog.rs: expected the metric families, found {sorted(METRICS)}")
# The metrics the Grafana dashboard may name (a subset of METRICS).
DASHBOARD_METRICS = {
    "rotessa_reconciliation_open_mismatches",
    "rotessa_reconciliation_oldest_open_mismatch_age_seconds",
    "rotessa_outbox_events_held_by_fence",
    "rotessa_outbox_oldest_held_age_seconds",
    "rotessa_api_request_duration_seconds",
    "rotessa_sync_last_success_timestamp_seconds",
    "rotessa_sync_schedule_interval_seconds",
    "rotessa_sync_run_duration_seconds",
    "rotessa_sync_rows_total",
    "rotessa_outbox_events_total",
    "rotessa_api_requests_total",
    "rotessa_api_retries_total",
    "rotessa_page_retries_total",
    "rotessa_rejected_rows_total",
    "rotessa_status_anomalies_total",
    "rotessa_stale_observations_total",
    "rotessa_removed_rows_total",
    "rotessa_leader",
    "rotessa_scheduler_skipped_ticks_total",
    "rotessa_outbox_consumer_backlog_events",
    "rotessa_outbox_consumer_oldest_unacked_age_seconds",
    "rotessa_relay_lag_events",
    "rotessa_relay_oldest_unrelayed_age_seconds",
    "rotessa_relay_events_total",
    "rotessa_relay_retries_total",
    "rotessa_http_unauthorized_total",
}
assert DASHBOARD_METRICS <= METRICS and HISTOGRAMS <= METRICS


def metric_base(name):
    """The metric a series name belongs to: a histogram's _bucket/_sum/_count map to the histogram."""
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return base if base in HISTOGRAMS and base != name else name


# --- every YAML file parses --------------------------------------------------------------------
docs_by_file = {}
for path in sorted(glob.glob("deploy/**/*.y*ml", recursive=True)):
    try:
        docs = [d for d in yaml.safe_load_all(read(path)) if d is not None]
    except yaml.YAMLError as e:
        fail(f"{path} does not parse: {e}")
        continue
    if not docs:
        fail(f"{path} holds no YAML document")
        continue
    docs_by_file[path] = docs
    ok(f"{path} parses ({len(docs)} document{'s' if len(docs) > 1 else ''})")

# --- configuration keys ------------------------------------------------------------------------
default_text = read("config/default.toml")
tomllib.loads(default_text)
allowed = set()
section = ""
for line in default_text.splitlines():
    if m := re.match(r"^\[([a-z_.]+)\]\s*$", line):
        section = m.group(1)
    elif m := re.match(r"^#?\s*([a-z_]+)\s*=\s*\S", line):
        # Keys and commented-out optional keys ("# api_key_file = ...").
        allowed.add(f"{section}.{m.group(1)}" if section else m.group(1))
stream_keys = {k.split(".", 2)[2] for k in allowed if re.match(r"^sync\.[a-z]+\.", k)}
for stream in ("transactions", "declines", "settlements", "clients", "customers", "payouts"):
    allowed |= {f"sync.{stream}.{k}" for k in stream_keys}


def flatten(table, prefix=""):
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, dotted + ".")
        else:
            yield dotted


for path in ["deploy/k8s/config.toml", "deploy/systemd/config.toml.example"]:
    try:
        keys = set(flatten(tomllib.loads(read(path))))
    except (OSError, tomllib.TOMLDecodeError) as e:
        fail(f"{path}: {e}")
        continue
    check(keys <= allowed, f"{path} parses and uses only keys of config/default.toml",
          f"unknown keys {sorted(keys - allowed)}")
    check("rotessa.api_key" not in keys, f"{path} holds no API key")

# Variables that are not configuration keys but are named in prose.
NOT_CONFIG = {"RECON_PORT"}
env_files = sorted(
    p for p in glob.glob("deploy/**/*", recursive=True) + ["docs/deployment.md"] if os.path.isfile(p)
)
bad = set()
seen = set()
for path in env_files:
    for name in re.findall(r"(?<![A-Za-z0-9_])RECON_[A-Z0-9]+(?:_{1,2}[A-Z0-9]+)*", read(path)):
        if name in NOT_CONFIG:
            continue
        seen.add(name)
        key = ".".join(part.lower() for part in name[len("RECON_"):].split("__"))
        if key not in allowed:
            bad.add(f"{name} ({path})")
check(not bad, f"{len(seen)} RECON_* variables named in deploy/ and docs map to configuration keys",
      ", ".join(sorted(bad)))

# --- systemd unit (static) ---------------------------------------------------------------------
unit_path = "deploy/systemd/rotessa-recon.service"
unit = {}
for line in read(unit_path).splitlines():
    if line and not line.startswith(("#", ";", "[")) and "=" in line:
        k, v = line.split("=", 1)
        unit.setdefault(k.strip(), []).append(v.strip())
want = {
    "Type": "notify", "TimeoutStopSec": "30s", "Restart": "on-failure", "DynamicUser": "yes",
    "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}
wrong = [f"{k}={v!r} (found {unit.get(k)})" for k, v in want.items() if v not in unit.get(k, [])]
for k in ("WatchdogSec", "RestartSec", "MemoryMax", "EnvironmentFile", "LoadCredential", "ExecStart"):
    if not unit.get(k):
        wrong.append(f"{k}= missing")
if "@system-service" not in unit.get("SystemCallFilter", []):
    wrong.append("SystemCallFilter=@system-service missing")
creds = {c.split(":", 1)[1]: c.split(":", 1)[0] for c in unit.get("LoadCredential", []) if ":" in c}
for source, key in (("/etc/rotessa-recon/rotessa-api-key", "RECON_ROTESSA__API_KEY_FILE"),
                    ("/etc/rotessa-recon/database-url", "RECON_DATABASE__URL_FILE")):
    cred = creds.get(source)
    if not cred:
        wrong.append(f"LoadCredential=...:{source} missing")
    elif f"{key}=%d/{cred}" not in unit.get("Environment", []):
        wrong.append(f"Environment={key}=%d/{cred} missing (LoadCredential id {cred!r})")
execstart = (unit.get("ExecStart") or [""])[0].split()
if "run" not in execstart or "--config" not in execstart:
    wrong.append(f"ExecStart does not run the daemon with --config: {execstart}")
check(not wrong, f"{unit_path} sets the required directives", "; ".join(wrong))
env_example = read("deploy/systemd/rotessa-recon.env.example")
check(not re.search(r"^(DATABASE_URL|RECON_DATABASE__URL|ROTESSA_API_KEY|RECON_ROTESSA__API_KEY)=",
                     env_example, re.M),
      "rotessa-recon.env.example sets neither the database URL nor the API key (the credentials do)")

# --- Kubernetes ----------------------------------------------------------------------------------
kustomization = docs_by_file.get("deploy/k8s/kustomization.yaml", [{}])[0]
check("secret.example.yaml" not in (kustomization.get("resources") or []),
      "the example Secret is not part of the kustomize base")
secret = (docs_by_file.get("deploy/k8s/secret.example.yaml") or [{}])[0]
secret_data = {**(secret.get("data") or {}), **(secret.get("stringData") or {})}
check(secret.get("kind") == "Secret" and secret_data
      and all("EXAMPLE" in str(v) for v in secret_data.values()),
      "secret.example.yaml is a Secret whose every value is marked EXAMPLE")


def mem_bytes(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|K|M|G)?", str(q))
    if not m:
        return None
    mult = {None: 1, "K": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(m.group(1)) * mult[m.group(2)]


if rendered_path:
    objs = [d for d in yaml.safe_load_all(read(rendered_path)) if d]
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    counts = {k: len(by_kind.get(k, [])) for k in ("Deployment", "ConfigMap", "Service", "PodDisruptionBudget")}
    check(all(v == 1 for v in counts.values()) and "Secret" not in by_kind,
          "rendered base: one Deployment, ConfigMap, Service and PodDisruptionBudget, no Secret", str(counts))
    try:
        dep, cm = by_kind["Deployment"][0], by_kind["ConfigMap"][0]
        svc, pdb = by_kind["Service"][0], by_kind["PodDisruptionBudget"][0]
        spec = dep["spec"]
        pod = spec["template"]["spec"]
        pod_labels = spec["template"]["metadata"]["labels"]
        (c,) = pod["containers"]
        problems = []

        def need(cond, what):
            if not cond:
                problems.append(what)

        need(spec.get("replicas") == 2, "replicas: 2 (leader + standby)")
        need(pod.get("terminationGracePeriodSeconds") == 30, "terminationGracePeriodSeconds: 30")
        need(pod.get("automountServiceAccountToken") is False, "automountServiceAccountToken: false")
        need(pod.get("enableServiceLinks") is False, "enableServiceLinks: false")
        psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
        need(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, "pod runs as non-root")
        need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault")
        need(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
        need(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem: true")
        need("ALL" in csc.get("capabilities", {}).get("drop", []), "capabilities drop ALL")
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
        need(ports.get("metrics") == 9090, "container port 9090 named metrics")
        for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/startupz")):
            get = c.get(probe, {}).get("httpGet", {})
            need(get.get("path") == path and get.get("port") in ("metrics", 9090), f"{probe} GET {path} on 9090")
        limit = mem_bytes(c.get("resources", {}).get("limits", {}).get("memory"))
        need(limit is not None and 150 * 2**20 < limit <= 512 * 2**20, "a memory limit above 150Mi (~256Mi)")
        need(c.get("resources", {}).get("requests"), "resource requests")
        env = {e["name"]: e for e in c.get("env", [])}
        need(env.get("RECON_HTTP__LISTEN", {}).get("value") == "0.0.0.0:9090", "RECON_HTTP__LISTEN=0.0.0.0:9090")
        need("ROTESSA_API_KEY" not in env and "RECON_ROTESSA__API_KEY" not in env,
             "no API key variable beside the key file (setting both is an error)")
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        # --config PATH comes from the generated ConfigMap.
        args = c.get("args", [])
        need(args[:1] == ["run"] and "--config" in args, "args: run --config PATH")
        if "--config" in args and args.index("--config") + 1 < len(args):
            cfg = args[args.index("--config") + 1]
            m = mounts.get(os.path.dirname(cfg))
            v = vols.get(m["name"]) if m else None
            need(v and v.get("configMap", {}).get("name") == cm["metadata"]["name"]
                 and os.path.basename(cfg) in cm.get("data", {}),
                 f"{cfg} is mounted from the ConfigMap {cm['metadata']['name']}")
        # The API key file and the database URL file come from the Secret.
        for var in ("RECON_ROTESSA__API_KEY_FILE", "RECON_DATABASE__URL_FILE"):
            keyfile = env.get(var, {}).get("value", "")
            m = mounts.get(os.path.dirname(keyfile))
            v = vols.get(m["name"], {}).get("secret", {}) if m else {}
            items = {i["path"]: i["key"] for i in v.get("items", [])}
            need(v and v.get("secretName") == secret.get("metadata", {}).get("name")
                 and items.get(os.path.basename(keyfile)) in secret_data,
                 f"{var}={keyfile} is a key of the Secret mounted there")
        need("DATABASE_URL" not in env and "RECON_DATABASE__URL" not in env,
             "no database URL variable beside the URL file (setting both is an error)")
        ann = spec["template"]["metadata"].get("annotations", {})
        need(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9090",
             "prometheus.io scrape annotations on the pods")
        sp = {p.get("name"): p for p in svc["spec"].get("ports", [])}
        need(sp.get("metrics", {}).get("port") == 9090, "Service port 9090 named metrics")
        need(svc["spec"].get("selector", {}).items() <= pod_labels.items(), "Service selects the pods")
        need(pdb["spec"].get("maxUnavailable") == 1, "PodDisruptionBudget maxUnavailable: 1")
        need(pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow",
             "PodDisruptionBudget unhealthyPodEvictionPolicy: AlwaysAllow (a database outage must not block drains)")
        need(pdb["spec"].get("selector", {}).get("matchLabels", {}).items() <= pod_labels.items(),
             "PodDisruptionBudget selects the pods")
        need(spec["selector"]["matchLabels"].items() <= pod_labels.items(), "Deployment selector matches its pods")
        check(not problems, "rendered Deployment, Service, PDB, ConfigMap and Secret references hold together",
              "; ".join(problems))
    except (KeyError, IndexError, TypeError, ValueError) as e:
        fail(f"rendered manifests: unexpected shape ({type(e).__name__}: {e})")

# --- Prometheus rules ------------------------------------------------------------------------------
rules_doc = (docs_by_file.get("deploy/k8s/prometheus-rules.yaml") or [{}])[0]
rules = [r for g in rules_doc.get("groups", []) for r in g.get("rules", [])]
docs_md = read("docs/deployment.md") if os.path.exists("docs/deployment.md") else ""
flat_docs = " ".join(docs_md.split())
problems = []
names = set()
for r in rules:
    name = r.get("alert", "?")
    names.add(name)
    if not (r.get("expr") and r.get("labels", {}).get("severity") and r.get("annotations", {}).get("summary")):
        problems.append(f"{name}: needs expr, labels.severity and annotations.summary")
        continue
    for metric in set(re.findall(r"\brotessa_[a-z_]+", r["expr"])):
        base = re.sub(r"_(bucket|sum|count)$", "", metric)
        if metric not in METRICS and not (base in HISTOGRAMS and base != metric):
            problems.append(f"{name}: unknown metric {metric}")
    if " ".join(str(r["expr"]).split()) not in flat_docs:
        problems.append(f"{name}: expression not copied into docs/deployment.md")
    runbook = r.get("annotations", {}).get("runbook_url", "")
    if runbook != f"docs/deployment.md#{name.lower()}" or f"\n### {name}\n" not in docs_md:
        problems.append(f"{name}: needs runbook_url docs/deployment.md#{name.lower()} and a section '### {name}' there")
for needed in ("max(rotessa_leader) == 0", "> 45 * 60", "> 3 * 3600", 'outcome="failed"',
               "rotessa_api_retries_total", "rotessa_rejected_rows_total", "rotessa_status_anomalies_total"):
    if not any(needed in str(r.get("expr")) for r in rules):
        problems.append(f"no alert on {needed}")
check(rules and not problems, f"prometheus-rules.yaml: {len(rules)} alerts, known metrics, copied into the docs, each with its runbook",
      "; ".join(problems))
missing = sorted(m for m in METRICS if m not in docs_md)
check(not missing, "docs/deployment.md lists every metric", f"missing {missing}")

# --- Prometheus Operator component ------------------------------------------------------------------
# Optional: deploy/k8s/components/prometheus-operator, enabled by an overlay such as
# deploy/overlays/prometheus-operator. The base must keep rendering without the operator's CRDs.
comp_dir = "deploy/k8s/components/prometheus-operator"
comp = (docs_by_file.get(f"{comp_dir}/kustomization.yaml") or [{}])[0]
sm = (docs_by_file.get(f"{comp_dir}/servicemonitor.yaml") or [{}])[0]
pr = (docs_by_file.get(f"{comp_dir}/prometheusrule.yaml") or [{}])[0]
svc_file = (docs_by_file.get("deploy/k8s/service.yaml") or [{}])[0]
problems = []
if (comp.get("apiVersion"), comp.get("kind")) != ("kustomize.config.k8s.io/v1alpha1", "Component"):
    problems.append(f"{comp_dir}/kustomization.yaml is not a kustomize Component")
if sorted(comp.get("resources") or []) != ["podmonitor-relay.yaml", "prometheusrule.yaml", "servicemonitor.yaml"]:
    problems.append(f"the component's resources are {comp.get('resources')}")
if any("prometheus-operator" in str(r)
       for r in (kustomization.get("components") or []) + (kustomization.get("resources") or [])):
    problems.append("deploy/k8s/kustomization.yaml includes the operator component (the base must not need its CRDs)")
for obj, kind in ((sm, "ServiceMonitor"), (pr, "PrometheusRule")):
    if (obj.get("apiVersion"), obj.get("kind")) != ("monitoring.coreos.com/v1", kind):
        problems.append(f"{kind}: apiVersion/kind are {obj.get('apiVersion')}/{obj.get('kind')}")
check(not problems, f"{comp_dir}: a Component with a ServiceMonitor, a PodMonitor and a PrometheusRule, not in the base",
      "; ".join(problems))

# The relay's PodMonitor selects the pods of deploy/k8s/relay/deployment.yaml by their labels and
# scrapes their container port named metrics.
pm = (docs_by_file.get(f"{comp_dir}/podmonitor-relay.yaml") or [{}])[0]
relay_dep = (docs_by_file.get("deploy/k8s/relay/deployment.yaml") or [{}])[0]
problems = []
if (pm.get("apiVersion"), pm.get("kind")) != ("monitoring.coreos.com/v1", "PodMonitor"):
    problems.append(f"apiVersion/kind are {pm.get('apiVersion')}/{pm.get('kind')}")
pm_spec = pm.get("spec") or {}
pm_sel = (pm_spec.get("selector") or {}).get("matchLabels") or {}
pod_tmpl = (relay_dep.get("spec") or {}).get("template") or {}
pod_labels = (pod_tmpl.get("metadata") or {}).get("labels") or {}
if not pm_sel or not pm_sel.items() <= pod_labels.items():
    problems.append(f"selector {pm_sel} does not match the relay pods' labels {pod_labels}")
pod_ports = {p.get("name") for c in (pod_tmpl.get("spec") or {}).get("containers", []) for p in c.get("ports", [])}
for ep in pm_spec.get("podMetricsEndpoints") or [{}]:
    if ep.get("port") != "metrics" or "metrics" not in pod_ports:
        problems.append(f"endpoint port {ep.get('port')!r} is not the relay container's port named metrics")
    if ep.get("path", "/metrics") != "/metrics":
        problems.append(f"endpoint path {ep.get('path')}")
check(not problems, "PodMonitor selects the relay's pods (deploy/k8s/relay) by their labels, port metrics",
      "; ".join(problems))


def servicemonitor_problems(sm, svc):
    """What keeps this ServiceMonitor from scraping the port named metrics of this Service."""
    out = []
    spec = sm.get("spec") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = (svc.get("metadata") or {}).get("labels") or {}
    want = {"app.kubernetes.io/name": "rotessa-recon", "app.kubernetes.io/component": "daemon"}
    if sel != want:
        out.append(f"selector.matchLabels is {sel}, expected {want}")
    if not sel.items() <= labels.items():
        out.append(f"selector {sel} does not match the Service's labels {labels}")
    if (spec.get("selector") or {}).get("matchExpressions"):
        out.append("selector has matchExpressions (not checked here)")
    eps = spec.get("endpoints") or []
    port_names = {p.get("name") for p in (svc.get("spec") or {}).get("ports", [])}
    if len(eps) != 1:
        out.append(f"{len(eps)} endpoints, expected 1")
    for ep in eps:
        if ep.get("port") != "metrics" or "metrics" not in port_names:
            out.append(f"endpoint port {ep.get('port')!r} is not the Service's port named metrics ({sorted(port_names)})")
        if ep.get("path", "/metrics") != "/metrics":
            out.append(f"endpoint path {ep.get('path')}")
        if ep.get("interval") != "30s":
            out.append(f"endpoint interval {ep.get('interval')}, expected 30s")
    return out


problems = servicemonitor_problems(sm, svc_file)
check(not problems, "ServiceMonitor selects the Service rotessa-recon-metrics by its labels, port metrics, /metrics every 30s",
      "; ".join(problems))
rule_groups = rules_doc.get("groups")
check(rule_groups and (pr.get("spec") or {}).get("groups") == rule_groups,
      "PrometheusRule spec.groups equals the groups of deploy/k8s/prometheus-rules.yaml",
      "they differ: copy the groups of prometheus-rules.yaml under spec: of "
      f"{comp_dir}/prometheusrule.yaml")
# promtool checks the groups as the operator will load them (see the shell part below).
with open(os.path.join(tmp_dir, "prometheusrule-groups.yaml"), "w", encoding="utf-8") as f:
    yaml.safe_dump({"groups": (pr.get("spec") or {}).get("groups") or []}, f, sort_keys=False)

if rendered_path:
    base_objs = [d for d in yaml.safe_load_all(read(rendered_path)) if d]
    check(not any(str(o.get("apiVersion", "")).startswith("monitoring.coreos.com/") for o in base_objs),
          "the rendered base holds no monitoring.coreos.com object (renders without the operator's CRDs)")
if operator_path:
    op_objs = [d for d in yaml.safe_load_all(read(operator_path)) if d]
    problems = []
    ident = lambda o: (o.get("kind"), (o.get("metadata") or {}).get("name"))
    extra = sorted(map(ident, op_objs), key=str)
    for o in base_objs if rendered_path else []:
        if ident(o) in extra:
            extra.remove(ident(o))
        else:
            problems.append(f"base object {ident(o)} missing")
    if sorted(k for k, _ in extra) != ["PodMonitor", "PrometheusRule", "ServiceMonitor"]:
        problems.append(f"besides the base's objects it holds {extra}, expected one ServiceMonitor, one PodMonitor and one PrometheusRule")
    sms = [o for o in op_objs if o.get("kind") == "ServiceMonitor"]
    prs = [o for o in op_objs if o.get("kind") == "PrometheusRule"]
    svcs = [o for o in op_objs if o.get("kind") == "Service"]
    if len(sms) == 1 and len(svcs) == 1:
        problems += [f"rendered ServiceMonitor: {p}" for p in servicemonitor_problems(sms[0], svcs[0])]
    if len(prs) == 1 and (prs[0].get("spec") or {}).get("groups") != rule_groups:
        problems.append("rendered PrometheusRule groups differ from prometheus-rules.yaml")
    check(not problems, "rendered overlay deploy/overlays/prometheus-operator: the base's objects plus one "
          "ServiceMonitor, one PodMonitor and one PrometheusRule", "; ".join(problems))

# --- Grafana dashboard -------------------------------------------------------------------------------
dash_path = "deploy/grafana/rotessa-recon.json"
dash_metrics = set()
try:
    dash = json.loads(read(dash_path))
except (OSError, json.JSONDecodeError) as e:
    fail(f"{dash_path} does not parse: {e}")
    dash = None
if dash is not None:
    problems = []
    if dash.get("uid") != "rotessa-recon" or dash.get("title") != "rotessa-recon":
        problems.append(f"uid/title are {dash.get('uid')!r}/{dash.get('title')!r}, expected rotessa-recon")
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        problems.append(f"schemaVersion {dash.get('schemaVersion')} (Grafana 10/11 export 38 and later)")
    variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list", [])}
    dsvar = variables.get("datasource", {})
    if dsvar.get("type") != "datasource" or dsvar.get("query") != "prometheus":
        problems.append("no variable datasource of type datasource over prometheus")
    inst = variables.get("instance", {})
    iq = inst.get("query")
    iq = iq.get("query") if isinstance(iq, dict) else iq
    if inst.get("type") != "query" or " ".join(str(iq).split()) != "label_values(rotessa_leader, instance)" \
            or not inst.get("multi") or not inst.get("includeAll"):
        problems.append("no variable instance: a multi, include-All query over label_values(rotessa_leader, instance)")
    if "datasource" not in json.dumps(inst.get("datasource")):
        problems.append("the instance variable does not query ${datasource}")
    check(not problems, f"{dash_path}: parses, uid and title rotessa-recon, variables datasource and instance",
          "; ".join(problems))

    def all_panels(panels):
        for p in panels or []:
            yield p
            yield from all_panels(p.get("panels"))

    uses_var = lambda ds: isinstance(ds, dict) and ds.get("uid") in ("${datasource}", "$datasource") \
        or ds in ("${datasource}", "$datasource")
    problems, ids, exprs = [], [], []
    panels = list(all_panels(dash.get("panels")))
    rows = [p for p in panels if p.get("type") == "row"]
    for p in panels:
        title = p.get("title") or f"panel {p.get('id')}"
        ids.append(p.get("id"))
        if p.get("type") == "row":
            if not p.get("title"):
                problems.append(f"row {p.get('id')} has no title")
            continue
        if not uses_var(p.get("datasource")):
            problems.append(f"{title}: datasource is {p.get('datasource')}, not ${{datasource}}")
        if not str(p.get("description") or "").strip():
            problems.append(f"{title}: no description")
        if not (p.get("fieldConfig") or {}).get("defaults", {}).get("unit"):
            problems.append(f"{title}: no unit")
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{title}: no query")
        for t in targets:
            where = f"{title} ({t.get('refId')})"
            if "datasource" in t and not uses_var(t["datasource"]):
                problems.append(f"{where}: datasource is {t['datasource']}")
            expr = str(t.get("expr") or "")
            if not expr.strip():
                problems.append(f"{where}: no expr")
                continue
            exprs.append((p.get("id"), t.get("refId"), expr))
            named = re.findall(r"\b(rotessa_[a-z_]+)\s*(\{[^}]*\})?", expr)
            if not named:
                problems.append(f"{where}: names no rotessa_ metric")
            for metric, matchers in named:
                base = metric_base(metric)
                dash_metrics.add(base)
                if base not in DASHBOARD_METRICS:
                    problems.append(f"{where}: unknown metric {metric}")
                elif base in HISTOGRAMS and base == metric:
                    problems.append(f"{where}: {metric} is a histogram: use _bucket, _sum or _count")
                if 'instance=~"$instance"' not in matchers.replace(" ", ""):
                    problems.append(f'{where}: {metric} is not filtered with instance=~"$instance"')
    dup = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if dup or None in ids:
        problems.append(f"panel ids not unique or missing: {dup}")
    check(not problems and exprs,
          f"{dash_path}: {len(panels) - len(rows)} panels in {len(rows)} rows with ${{datasource}}, a description "
          f"and a unit; {len(exprs)} queries over {len(dash_metrics)} known metrics, filtered on $instance; unique ids",
          "; ".join(problems))
    # The queries as recording rules, for promtool check rules (Grafana's variables made concrete).
    concrete = lambda e: (e.replace("$__rate_interval", "2m").replace("$__range", "6h")
                          .replace("${instance}", ".*").replace("$instance", ".*"))
    with open(os.path.join(tmp_dir, "dashboard-queries.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "grafana-dashboard-queries", "rules": [
            {"record": f"dashboard:panel_{i}:{ref}", "expr": concrete(e)} for i, ref, e in exprs]}]},
            f, sort_keys=False)

# --- a real scrape (CHECK_METRICS_SCRAPE) -------------------------------------------------------------
if not scrape_path:
    skip("CHECK_METRICS_SCRAPE not set: the dashboard's metrics were not compared with a real /metrics scrape")
elif not os.path.isfile(scrape_path):
    fail(f"CHECK_METRICS_SCRAPE={scrape_path} is not a file")
else:
    seen_metrics = set()
    for line in read(scrape_path).splitlines():
        if m := re.match(r"#\s*TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s", line):
            seen_metrics.add(m.group(1))
        elif m := re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{ ]", line):
            seen_metrics.add(metric_base(m.group(1)))
    missing = sorted(m for m in dash_metrics if m not in seen_metrics)
    check(dash_metrics and not missing,
          f"the {len(dash_metrics)} metrics the dashboard names are all in the real /metrics scrape {scrape_path}",
          f"missing from the real /metrics scrape: {', '.join(missing) or '(the dashboard names no metric)'}")

# --- docker compose --------------------------------------------------------------------------------
compose_path = "deploy/docker/docker-compose.yml"
compose = (docs_by_file.get(compose_path) or [{}])[0]
services = compose.get("services", {})
problems = []
for s in ("postgres", "sim", "recon"):
    if s not in services:
        problems.append(f"service {s} missing")
if not str(services.get("postgres", {}).get("image", "")).startswith("postgres:16"):
    problems.append("postgres is not postgres:16")
for name, s in services.items():
    for dep, cond in (s.get("depends_on") or {}).items():
        if dep not in services:
            problems.append(f"{name} depends on unknown {dep}")
        elif cond.get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
            problems.append(f"{name} waits for {dep} to be healthy, which has no healthcheck")
    b = s.get("build")
    if b:
        ctx = os.path.normpath(os.path.join(os.path.dirname(compose_path), b.get("context", ".")))
        if not os.path.isfile(os.path.join(ctx, b.get("dockerfile", "Dockerfile"))):
            problems.append(f"{name}: build context/dockerfile does not resolve to a file")
recon = services.get("recon", {})
renv = recon.get("environment", {})
if renv.get("RECON_HTTP__LISTEN") != "0.0.0.0:9090":
    problems.append("recon: RECON_HTTP__LISTEN is not 0.0.0.0:9090")
if not any("9090" in str(p) for p in recon.get("ports", [])):
    problems.append("recon: port 9090 not published")
if not str(renv.get("RECON_ROTESSA__BASE_URL", "")).startswith("http://sim:"):
    problems.append("recon: not pointed at the simulator")
if (services.get("sim", {}).get("command") or [""])[0] != "sim":
    problems.append("sim: command is not sim")
if recon.get("command") != ["run"]:
    problems.append("recon: command is not [run]")
check(not problems, f"{compose_path}: services {', '.join(services)} hold together", "; ".join(problems))

# --- Dockerfile ------------------------------------------------------------------------------------
df_path = "deploy/docker/Dockerfile"
lines = []
for raw in read(df_path).replace("\\\n", " ").splitlines():
    s = raw.strip()
    if s and not s.startswith("#"):
        lines.append(s)
instr = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]
froms = [a for i, a in instr if i == "FROM"]
problems = []
if len(froms) < 2:
    problems.append("not multi-stage")
else:
    if not re.match(r"rust:", froms[0]):
        problems.append(f"builder is {froms[0]}")
    if not froms[-1].startswith("debian:bookworm-slim"):
        problems.append(f"runtime is {froms[-1]}")
body = " ".join(a for _, a in instr)
for needle in ("cargo build --release --locked", "ca-certificates"):
    if needle not in body:
        problems.append(f"no {needle}")
last = max(n for n, (i, _) in enumerate(instr) if i == "FROM")
final = {}
for i, a in instr[last:]:
    final.setdefault(i, []).append(a)
if not any(u.split(":")[0] == "10001" for u in final.get("USER", [])):
    problems.append("runtime USER is not 10001")
for key, want_json in (("ENTRYPOINT", ["rotessa-recon"]), ("CMD", ["run"])):
    try:
        if json.loads(final.get(key, ["null"])[-1]) != want_json:
            problems.append(f"{key} is not {want_json}")
    except json.JSONDecodeError:
        problems.append(f"{key} is not in exec (JSON) form")
if "9090" not in " ".join(final.get("EXPOSE", [])):
    problems.append("EXPOSE 9090 missing")
ignore_file = df_path + ".dockerignore"
ignored = [l.strip() for l in read(ignore_file).splitlines()] if os.path.exists(ignore_file) else []
ignored = [l for l in ignored if l and not l.startswith("#")]
def excluded(path):
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in ignored)


for i, a in instr:
    if i == "COPY" and "--from" not in a:
        for src in a.split()[:-1]:
            if src.startswith("--"):
                continue
            if not os.path.exists(src):
                problems.append(f"COPY source {src} does not exist")
            if src != "." and excluded(src):
                problems.append(f"COPY source {src} is excluded by {ignore_file}")
# What the build reads must reach the build context.
for needed in ("Cargo.toml", "Cargo.lock", "src", "config", "migrations"):
    if excluded(needed):
        problems.append(f"{needed} is excluded by {ignore_file}")
m = re.search(r"ARG RUST_VERSION=(\d+)\.(\d+)", read(df_path))
mv = re.search(r'^rust-version\s*=\s*"(\d+)\.(\d+)', read("Cargo.toml"), re.M)
if m and mv and tuple(map(int, m.groups())) < tuple(map(int, mv.groups())):
    problems.append(f"RUST_VERSION {m.group(1)}.{m.group(2)} is older than Cargo.toml's rust-version")
check(not problems, f"{df_path}: multi-stage, --locked build, non-root runtime, exec-form entrypoint, build inputs in context",
      "; ".join(problems))

with open(os.path.join(tmp_dir, "python-counts"), "w", encoding="utf-8") as f:
    f.write(f"{failures} {skips}\n")
sys.exit(1 if failures else 0)
PY
    then
        # It writes how many of its checks failed and skipped when it gets to the end.
        if [ ! -s "$tmp/python-counts" ]; then
            fail "the python checks stopped early (see above)"
        fi
    fi
    if [ -s "$tmp/python-counts" ]; then
        read -r py_failures py_skips <"$tmp/python-counts"
        failures=$((failures + py_failures))
        skips=$((skips + py_skips))
    fi
else
    skip "python3 with PyYAML not available (pip install pyyaml failed): YAML, TOML, manifest, rules, dashboard, compose and Dockerfile checks not run"
fi

# --- systemd ---------------------------------------------------------------------------------------
unit=deploy/systemd/rotessa-recon.service
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify refuses an ExecStart binary that does not exist; when it is not installed here, check a
    # copy whose ExecStart runs an executable that does. Any other message fails the check
    # (systemd-analyze exits 0 on many warnings, so its output is what counts).
    mkdir -p "$tmp/systemd"
    binary=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit" | head -n 1)
    if [ -x "$binary" ]; then
        cp "$unit" "$tmp/systemd/rotessa-recon.service"
        note="as written"
    else
        stand_in=$(type -P true)
        sed "s#^ExecStart=$binary#ExecStart=$stand_in#" "$unit" >"$tmp/systemd/rotessa-recon.service"
        note="ExecStart $binary (not installed here) replaced by $stand_in"
    fi
    if out=$(systemd-analyze verify "$tmp/systemd/rotessa-recon.service" 2>&1) && [ -z "$out" ]; then
        ok "systemd-analyze verify $unit ($note)"
    else
        fail "systemd-analyze verify $unit ($note): ${out:-non-zero exit}"
    fi
    # Exposure 0.0 (locked down) to 10.0 (unprotected); --threshold is in tenths.
    if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
        if out=$(systemd-analyze security --offline=true --threshold=20 "$tmp/systemd/rotessa-recon.service" 2>&1); then
            ok "systemd-analyze security: $(printf '%s\n' "$out" | grep -o 'Overall exposure level.*' | sed 's/ for [^:]*:/:/')"
        else
            fail "systemd-analyze security: exposure above 2.0: $(printf '%s\n' "$out" | tail -n 1)"
        fi
    else
        skip "systemd-analyze security --offline not supported by this systemd"
    fi
else
    skip "systemd-analyze not installed: the unit was not verified"
fi

# --- promtool --------------------------------------------------------------------------------------
if command -v promtool >/dev/null 2>&1; then
    if out=$(promtool check rules deploy/k8s/prometheus-rules.yaml 2>&1); then
        ok "promtool check rules: $(printf '%s\n' "$out" | grep -o '[0-9]* rules found')"
    else
        fail "promtool check rules: $out"
    fi
    if out=$(promtool test rules deploy/k8s/prometheus-rules.test.yaml 2>&1); then
        ok "promtool test rules deploy/k8s/prometheus-rules.test.yaml"
    else
        fail "promtool test rules: $out"
    fi
    # Written by the python part above: the PrometheusRule's spec.groups as a rules file, and the
    # dashboard's queries as recording rules (Grafana's $variables replaced by concrete values).
    for extracted in "prometheusrule-groups.yaml:the PrometheusRule's spec.groups" \
        "dashboard-queries.yaml:the dashboard's queries"; do
        file="$tmp/${extracted%%:*}" what="${extracted#*:}"
        if [ ! -s "$file" ]; then
            fail "promtool: $what were not extracted (see the python checks above)"
        elif out=$(promtool check rules "$file" 2>&1); then
            ok "promtool check rules, $what: $(printf '%s\n' "$out" | grep -o '[0-9]* rules found')"
        else
            fail "promtool check rules, $what: $out"
        fi
    done
else
    skip_tool promtool "promtool not installed (apt-get install prometheus): rules and dashboard queries not compiled, rules not unit-tested"
fi

# --- docker ----------------------------------------------------------------------------------------
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    if out=$(docker compose -f deploy/docker/docker-compose.yml config --quiet 2>&1); then
        ok "docker compose config"
    else
        fail "docker compose config: $out"
    fi
else
    skip "no running docker engine: image not built, 'docker compose config' not run"
fi

# --- linters, when present -------------------------------------------------------------------------
if command -v shellcheck >/dev/null 2>&1; then
    if out=$(shellcheck deploy/check.sh 2>&1); then ok "shellcheck deploy/check.sh"; else fail "shellcheck: $out"; fi
else
    skip_tool shellcheck "shellcheck not installed"
fi
if command -v hadolint >/dev/null 2>&1; then
    if out=$(hadolint deploy/docker/Dockerfile 2>&1); then ok "hadolint Dockerfile"; else fail "hadolint: $out"; fi
else
    skip "hadolint not installed"
fi

if [ "$failures" -gt 0 ]; then
    echo "deploy/check.sh: $failures check(s) failed, $skips skipped"
    exit 1
fi
echo "deploy/check.sh: all checks passed, $skips skipped"
