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
#   - the Dockerfile and docker-compose.yml are sane; `docker compose config` when an engine runs.
# A tool that is missing is skipped with a message; any other problem fails the script (exit 1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failures=0
skips=0
ok() { echo "ok:   $*"; }
skip() { echo "skip: $*"; skips=$((skips + 1)); }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- kustomize -------------------------------------------------------------------------------------
rendered=""
if command -v kubectl >/dev/null 2>&1; then
    if kubectl kustomize deploy/k8s >"$tmp/k8s.yaml" 2>"$tmp/kustomize.err"; then
        rendered="$tmp/k8s.yaml"
        ok "kubectl kustomize deploy/k8s renders ($(grep -c '^kind:' "$rendered") objects)"
    else
        fail "kubectl kustomize deploy/k8s: $(cat "$tmp/kustomize.err")"
    fi
else
    skip "kubectl not installed: kustomize build not checked"
fi

# --- YAML, TOML, manifests, rules, compose, Dockerfile (python3) -----------------------------------
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
    if ! python3 - "$rendered" <<'PY'
import glob, json, os, re, sys, tomllib
import yaml

rendered_path = sys.argv[1]
failures = 0


def ok(msg):
    print(f"ok:   {msg}")


def fail(msg):
    global failures
    failures += 1
    print(f"FAIL: {msg}")


def check(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        fail(msg + (f": {detail}" if detail else ""))
    return cond


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# The daemon's metrics (see docs/deployment.md); a histogram also has _bucket, _sum and _count.
METRICS = {
    "rotessa_sync_last_success_timestamp_seconds",
    "rotessa_sync_run_duration_seconds",
    "rotessa_sync_rows_total",
    "rotessa_outbox_events_total",
    "rotessa_api_requests_total",
    "rotessa_api_retries_total",
    "rotessa_rejected_rows_total",
    "rotessa_status_anomalies_total",
    "rotessa_stale_observations_total",
    "rotessa_removed_rows_total",
    "rotessa_runs_pruned_total",
    "rotessa_leader",
    "rotessa_scheduler_skipped_ticks_total",
}
HISTOGRAMS = {"rotessa_sync_run_duration_seconds"}

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
cred = (unit.get("LoadCredential") or [":"])[0].split(":", 1)[0]
if f"RECON_ROTESSA__API_KEY_FILE=%d/{cred}" not in unit.get("Environment", []):
    wrong.append(f"Environment=RECON_ROTESSA__API_KEY_FILE=%d/{cred} missing (LoadCredential id {cred!r})")
execstart = (unit.get("ExecStart") or [""])[0].split()
if "run" not in execstart or "--config" not in execstart:
    wrong.append(f"ExecStart does not run the daemon with --config: {execstart}")
check(not wrong, f"{unit_path} sets the required directives", "; ".join(wrong))
env_example = read("deploy/systemd/rotessa-recon.env.example")
check(re.search(r"^DATABASE_URL=", env_example, re.M)
      and not re.search(r"^(ROTESSA_API_KEY|RECON_ROTESSA__API_KEY)=", env_example, re.M),
      "rotessa-recon.env.example sets DATABASE_URL and no API key (the credential provides it)")

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
        for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/livez")):
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
        # The API key file comes from the Secret, DATABASE_URL too.
        keyfile = env.get("RECON_ROTESSA__API_KEY_FILE", {}).get("value", "")
        m = mounts.get(os.path.dirname(keyfile))
        v = vols.get(m["name"], {}).get("secret", {}) if m else {}
        items = {i["path"]: i["key"] for i in v.get("items", [])}
        need(v and v.get("secretName") == secret.get("metadata", {}).get("name")
             and items.get(os.path.basename(keyfile)) in secret_data,
             f"RECON_ROTESSA__API_KEY_FILE={keyfile} is a key of the Secret mounted there")
        ref = env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
        need(ref.get("name") == secret.get("metadata", {}).get("name") and ref.get("key") in secret_data,
             "DATABASE_URL comes from the Secret (secret.example.yaml has the key)")
        ann = spec["template"]["metadata"].get("annotations", {})
        need(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9090",
             "prometheus.io scrape annotations on the pods")
        sp = {p.get("name"): p for p in svc["spec"].get("ports", [])}
        need(sp.get("metrics", {}).get("port") == 9090, "Service port 9090 named metrics")
        need(svc["spec"].get("selector", {}).items() <= pod_labels.items(), "Service selects the pods")
        need(pdb["spec"].get("maxUnavailable") == 1, "PodDisruptionBudget maxUnavailable: 1")
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
for needed in ("max(rotessa_leader) == 0", "> 45 * 60", "> 3 * 3600", 'outcome="failed"',
               "rotessa_api_retries_total", "rotessa_rejected_rows_total", "rotessa_status_anomalies_total"):
    if not any(needed in str(r.get("expr")) for r in rules):
        problems.append(f"no alert on {needed}")
check(rules and not problems, f"prometheus-rules.yaml: {len(rules)} alerts, known metrics, copied into the docs",
      "; ".join(problems))
missing = sorted(m for m in METRICS if m not in docs_md)
check(not missing, "docs/deployment.md lists every metric", f"missing {missing}")

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

sys.exit(1 if failures else 0)
PY
    then
        failures=$((failures + 1))
    fi
else
    skip "python3 with PyYAML not available (pip install pyyaml failed): YAML, TOML, manifest, rules, compose and Dockerfile checks not run"
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
else
    skip "promtool not installed (apt-get install prometheus): rules not compiled or unit-tested"
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
    skip "shellcheck not installed"
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
