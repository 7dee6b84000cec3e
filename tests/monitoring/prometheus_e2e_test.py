#!/usr/bin/env python3
"""deploy/ proved on the real parts (issue 8, part 4, Prometheus half).

Starts billnet-server on loopback with a model repository (default: a tiny
random model made by billnet-model), starts Debian's `prometheus` on loopback
with a copy of deploy/prometheus/prometheus.yml pointed at the server's
metrics port (scrape and evaluation intervals cut to 1 s, the Alertmanager
section removed so nothing is sent anywhere), waits for a scrape, sends
traffic (clips classified and streamed with billnet-client, one undecodable
stream, one call for an unknown model), waits until Prometheus has scraped
the final counters, then asks Prometheus's HTTP API for
  - every recording rule it loaded (by its recorded name),
  - the left-hand side of every comparison in every alert expression (an
    absent(X) alert: X; operands on the right of `unless` and time-shifted
    operands (`offset`) look into a past that a Prometheus started a minute
    ago does not have, and are listed as skipped),
  - every query of the Grafana dashboard (panels, annotations, the
    selectors of the variables' label_values queries), with fixed values for
    the variables ($job, $instance, $model, $version, $stage, $phase,
    $__rate_interval, ...),
and requires at least one sample with a finite value from each. The rules'
health as Prometheus reports it must be "ok".

Usage: prometheus_e2e_test.py --build BUILD_DIR --source SOURCE_DIR
         [--repo MODEL_REPOSITORY --model NAME]   (default: a tiny random model)
Exit 0: pass; 1: fail; 77: prometheus or promtool is not installed.
"""
import argparse
import glob
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request


class Failure(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout_s, procs=()):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, p in procs:
            if p.poll() is not None:
                raise Failure("%s exited (%d) while waiting for %s" % (name, p.returncode, what))
        try:
            value = check()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            pass
        time.sleep(0.25)
    raise Failure("timed out after %d s waiting for %s" % (timeout_s, what))


# ---- PromQL: the left-hand sides of an alert expression ----------------------

_OPEN, _CLOSE = "([{", ")]}"


def _top_level(expr):
    """Yields (index, char) of the characters of expr outside brackets and strings."""
    depth, quote, i = 0, None, 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif depth == 0:
            yield i, c
        i += 1


def _strip_parens(expr):
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, c in enumerate(expr):
            depth += c == "("
            depth -= c == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr  # "(a) and (b)": the first paren closes early
        expr = expr[1:-1].strip()
    return expr


_SET_OP = re.compile(r"\s(and|or|unless)\s+(?:(?:on|ignoring)\s*\([^)]*\)\s*)?", re.I)
_COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(\s*bool\b)?")


def split_set_ops(expr):
    """[(op_before, operand)] split at top-level and/or/unless."""
    top = {i for i, _ in _top_level(expr)}
    parts, last, op = [], 0, None
    for m in _SET_OP.finditer(expr):
        if m.start() in top and m.start() >= last:
            parts.append((op, expr[last:m.start()]))
            op, last = m.group(1).lower(), m.end()
    parts.append((op, expr[last:]))
    return parts


def condition_operands(expr, skipped):
    """Left-hand sides of the comparisons of an alert expression."""
    expr = _strip_parens(expr)
    parts = split_set_ops(expr)
    if len(parts) > 1:
        out = []
        for op, operand in parts:
            if op == "unless":
                skipped.append((operand.strip(), "right of unless"))
                continue
            out += condition_operands(operand, skipped)
        return out
    top = dict(_top_level(expr))
    for m in _COMPARISON.finditer(expr):
        if m.start() in top and not (m.group(1) in "<>" and expr[m.start() - 1:m.start()] in "=!"):
            lhs = _strip_parens(expr[:m.start()])
            break
    else:
        lhs = expr
    m = re.fullmatch(r"absent\s*\((.*)\)", lhs, re.S)
    if m:
        lhs = m.group(1).strip()
    if re.search(r"\boffset\b", lhs):
        skipped.append((lhs, "offset: looks into the past"))
        return []
    return [lhs]


# ---- the Grafana dashboard's queries -----------------------------------------

def dashboard_queries(path, values):
    """[(where, PromQL)] of a dashboard JSON, variables replaced by values."""
    dash = json.load(open(path))
    found = []

    def walk_panels(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    found.append(("panel '%s' %s" % (p.get("title"), t.get("refId")), t["expr"]))
            walk_panels(p.get("panels", []))

    walk_panels(dash.get("panels", []))
    if not found:
        raise Failure("no panel queries in " + path)
    # The layout: unique panel ids, panels inside the 24-column grid, none
    # overlapping another.
    cells, ids = {}, set()
    for p in dash["panels"]:
        if p["id"] in ids:
            raise Failure("dashboard: panel id %d twice" % p["id"])
        ids.add(p["id"])
        g = p["gridPos"]
        if g["x"] < 0 or g["x"] + g["w"] > 24:
            raise Failure("dashboard: panel '%s' outside the grid" % p["title"])
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    raise Failure("dashboard: panels '%s' and '%s' overlap" % (p["title"], cells[(x, y)]))
                cells[(x, y)] = p["title"]
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            found.append(("annotation '%s'" % a["name"], a["expr"]))
    names = set()
    for v in dash.get("templating", {}).get("list", []):
        names.add(v["name"])
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query":
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q.strip(), re.S)
            if not m:
                raise Failure("variable %s: query '%s' is not label_values(selector, label)" % (v["name"], q))
            found.append(("variable $%s (label %s)" % (v["name"], m.group(2)), m.group(1)))
    missing = names - set(values) - {"datasource"}
    if missing:
        raise Failure("no test value for dashboard variables: " + ", ".join(sorted(missing)))

    def subst(expr):
        for name in sorted(values, key=len, reverse=True):
            expr = expr.replace("${%s}" % name, values[name]).replace("[[%s]]" % name, values[name])
            expr = re.sub(r"\$%s\b" % re.escape(name), lambda _: values[name], expr)
        if "$" in expr:
            raise Failure("unreplaced variable in: " + expr)
        return expr

    return [(where, subst(expr)) for where, expr in found]


# ---- the test ----------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="billnet-monitoring-")
        self.procs = []
        self.build = os.path.abspath(args.build)
        self.source = os.path.abspath(args.source)

    def start(self, name, argv, logfile):
        out = open(os.path.join(self.work, logfile), "w")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((name, p, logfile))
        return p

    def stop_all(self):
        for name, p, _ in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def dump_logs(self):
        for name, _, logfile in self.procs:
            text = open(os.path.join(self.work, logfile)).read()
            log("---- %s log (last 40 lines) ----\n%s" % (name, "\n".join(text.splitlines()[-40:])))

    def client(self, *argv, expect_ok=True):
        cmd = [os.path.join(self.build, "client", "billnet-client"), "--server", self.grpc_addr] + list(argv)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        if (proc.returncode == 0) != expect_ok:
            raise Failure("%s: exit %d, expected %s\n%s" % (" ".join(cmd), proc.returncode,
                                                           "0" if expect_ok else "an error", proc.stdout))
        return proc.stdout

    def query(self, promql):
        url = "%s/api/v1/query?%s" % (self.prom, urllib.parse.urlencode({"query": promql}))
        try:
            body = json.loads(http_get(url))
        except urllib.error.HTTPError as e:
            raise Failure("query '%s': HTTP %d: %s" % (promql, e.code, e.read().decode()))
        if body.get("status") != "success":
            raise Failure("query '%s': %s" % (promql, body))
        data = body["data"]
        if data["resultType"] == "vector":
            return [(s["metric"], float(s["value"][1])) for s in data["result"]]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        raise Failure("query '%s': unexpected result type %s" % (promql, data["resultType"]))

    def server_metrics(self):
        return http_get("http://%s/metrics" % self.metrics_addr)

    def make_repo(self):
        repo = os.path.join(self.work, "repo")
        os.makedirs(os.path.join(repo, "tiny", "1"))
        for s in ("s1", "s2", "s3", "s4", "s5"):
            subprocess.run([os.path.join(self.build, "engine", "billnet-model"), "random", "--stage", s,
                            "--seed", "3", "--name", "tiny", "--base-channels", "8", "--groups", "2",
                            "--height", "24", "--width", "32",
                            "-o", os.path.join(repo, "tiny", "1", s + ".safetensors")],
                           check=True, stdout=subprocess.DEVNULL)
        return repo, "tiny"

    def start_server(self):
        repo, model = (self.args.repo, self.args.model) if self.args.repo else self.make_repo()
        ready = os.path.join(self.work, "ready")
        p = self.start("billnet-server", [
            os.path.join(self.build, "server", "billnet-server"), "--listen", "127.0.0.1:0",
            "--metrics-listen", "127.0.0.1:0", "--model-repository", repo, "--default-model", model,
            "--poll-interval-ms", "0", "--ready-file", ready, "--log-level", "info"], "server.log")
        wait_for("the server's ready file", lambda: os.path.getsize(ready) > 0, 120, [("billnet-server", p)])
        grpc_port, metrics_port = open(ready).read().split()
        self.grpc_addr = "127.0.0.1:" + grpc_port
        self.metrics_addr = "127.0.0.1:" + metrics_port
        text = self.server_metrics()
        m = re.search(r'^billnet_model_active\{([^}]*)\} 1$', text, re.M)
        if not m:
            raise Failure("no active model in /metrics")
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        self.model = labels
        log("server: gRPC %s, metrics %s, active model %s/%s/%s" % (
            self.grpc_addr, self.metrics_addr, labels["model"], labels["version"], labels["stage"]))

    def start_prometheus(self):
        deploy = os.path.join(self.source, "deploy", "prometheus")
        conf_dir = os.path.join(self.work, "prometheus")
        os.makedirs(conf_dir)
        for f in glob.glob(os.path.join(deploy, "*.yml")):
            shutil.copy(f, conf_dir)
        conf = open(os.path.join(deploy, "prometheus.yml")).read()
        edits = [
            (r"'127\.0\.0\.1:9464'", "'%s'" % self.metrics_addr),      # the target
            (r"(?m)^(\s*)scrape_interval: \S+", r"\g<1>scrape_interval: 1s"),
            (r"(?m)^(\s*)scrape_timeout: \S+", r"\g<1>scrape_timeout: 1s"),
            (r"(?m)^(\s*)evaluation_interval: \S+", r"\g<1>evaluation_interval: 1s"),
            (r"(?ms)^alerting:\n(?:[ #].*?\n|\n)*(?=\S)", ""),        # no Alertmanager
        ]
        for pattern, repl in edits:
            conf, n = re.subn(pattern, repl, conf)
            if n == 0:
                raise Failure("deploy/prometheus/prometheus.yml: no match for %s (the test's edit)" % pattern)
        open(os.path.join(conf_dir, "prometheus.yml"), "w").write(conf)
        check = subprocess.run(["promtool", "check", "config", os.path.join(conf_dir, "prometheus.yml")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if check.returncode != 0:
            raise Failure("promtool check config on the test's copy:\n" + check.stdout)
        port = free_port()
        self.prom = "http://127.0.0.1:%d" % port
        p = self.start("prometheus", [
            "prometheus", "--config.file=" + os.path.join(conf_dir, "prometheus.yml"),
            "--storage.tsdb.path=" + os.path.join(self.work, "tsdb"),
            "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"], "prometheus.log")
        procs = [("prometheus", p)]
        wait_for("prometheus /-/ready", lambda: "Ready" in http_get(self.prom + "/-/ready"), 60, procs)
        wait_for("a successful scrape of billnet-server",
                 lambda: self.query('up{job="billnet-server"} == 1'), 60, procs)
        log("prometheus: %s, scraping %s every 1 s" % (self.prom, self.metrics_addr))

    def traffic(self):
        clips = sorted(glob.glob(os.path.join(self.source, "samples", "clips", "*.mp4")))
        if not clips:
            raise Failure("no samples/clips/*.mp4")
        for clip in clips[:2]:
            log("classify %s: %s" % (os.path.basename(clip), self.client("classify", clip).splitlines()[0]))
        out = self.client("stream", clips[0])
        log("stream %s: %s" % (os.path.basename(clips[0]), out.strip().splitlines()[-1]))
        garbage = os.path.join(self.work, "garbage.mp4")
        with open(garbage, "wb") as f:
            f.write(bytes((i * 7919 + 13) % 251 for i in range(8192)))
        self.client("stream", "--passthrough", garbage, expect_ok=False)
        self.client("classify", "--model", "no-such-model", clips[0], expect_ok=False)
        log("sent an undecodable stream and a call for an unknown model")

    def wait_final_scrape(self):
        sel = 'model="%s", version="%s", stage="%s"' % (self.model["model"], self.model["version"],
                                                          self.model["stage"])
        text = self.server_metrics()

        def value(name, labels):
            m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), labels), text, re.M)
            if not m:
                raise Failure("%s{%s} not in /metrics" % (name, labels))
            return float(m.group(1))

        lab = 'model="%s",stage="%s",version="%s"' % (self.model["model"], self.model["stage"],
                                                         self.model["version"])
        want = {
            "billnet_windows_total{%s}" % sel: value("billnet_windows_total", lab),
            "billnet_decode_errors_total{%s}" % sel: value("billnet_decode_errors_total", lab),
            'billnet_refused_streams_total{reason="unknown_model"}':
                value("billnet_refused_streams_total", 'reason="unknown_model"'),
        }
        for q, v in want.items():
            if v <= 0:
                raise Failure("the traffic did not move %s (server: %g)" % (q, v))

        def scraped():
            return all(self.query(q) and self.query(q)[0][1] == v for q, v in want.items())

        wait_for("Prometheus to scrape the server's final counters", scraped, 30)
        time.sleep(3)  # a few rule evaluations (every 1 s) after that scrape
        log("prometheus has the final counters: " +
            ", ".join("%s = %g" % (q, v) for q, v in want.items()))

    def require_data(self, where, promql, failures):
        result = self.query(promql)
        finite = [v for _, v in result if math.isfinite(v)]
        if not finite:
            failures.append("%s: %s -> %s" % (where, promql, "no data" if not result else
                                              "only non-finite values %s" % [v for _, v in result]))
            return
        log("  ok  %-60s %3d series, e.g. %.6g" % (where[:60], len(result), finite[0]))

    def check_everything(self):
        failures, skipped = [], []
        rules = json.loads(http_get(self.prom + "/api/v1/rules"))["data"]["groups"]
        n_rec = n_alert = 0
        for g in rules:
            for r in g["rules"]:
                if r.get("health") != "ok":
                    failures.append("rule %s: health %s %s" % (r["name"], r.get("health"), r.get("lastError")))
                if r["type"] == "recording":
                    n_rec += 1
                    self.require_data("record " + r["name"], r["name"], failures)
                else:
                    n_alert += 1
                    lhs = condition_operands(r["query"], skipped)
                    if not lhs:
                        failures.append("alert %s: no left-hand side found in %s" % (r["name"], r["query"]))
                    for i, e in enumerate(lhs):
                        self.require_data("alert %s lhs %d" % (r["name"], i + 1), e, failures)
        if n_rec == 0 or n_alert == 0:
            raise Failure("Prometheus loaded %d recording rules and %d alerts" % (n_rec, n_alert))
        values = {
            "job": "billnet-server", "instance": self.metrics_addr, "model": self.model["model"],
            "version": self.model["version"], "stage": self.model["stage"], "phase": "total",
            "__rate_interval": "1m", "__interval": "15s", "__range": "5m",
        }
        dash = os.path.join(self.source, "deploy", "grafana", "dashboards", "billnet.json")
        queries = dashboard_queries(dash, values)
        for where, q in queries:
            if where.startswith("annotation"):
                for i, e in enumerate(condition_operands(q, skipped)):
                    self.require_data("%s lhs %d" % (where, i + 1), e, failures)
            else:
                self.require_data(where, q, failures)
        for e, why in skipped:
            log("  skipped (%s): %s" % (why, " ".join(e.split())))
        if failures:
            raise Failure("no data for:\n  " + "\n  ".join(failures))
        log("prometheus_e2e_test: ok: %d recording rules, %d alerts, %d dashboard queries have data"
            % (n_rec, n_alert, len(queries)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--repo", help="model repository (default: a tiny random model)")
    ap.add_argument("--model", help="model name in --repo")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            print("SKIP: %s is not installed (Debian package prometheus; scripts/setup installs it)" % tool)
            sys.exit(77)
    if args.repo and not args.model:
        ap.error("--repo needs --model")
    run = Run(args)
    try:
        run.start_server()
        run.start_prometheus()
        run.traffic()
        run.wait_final_scrape()
        run.check_everything()
    except (Failure, subprocess.SubprocessError, OSError) as e:
        run.stop_all()
        run.dump_logs()
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
    finally:
        run.stop_all()
        if args.keep:
            log("work directory kept: " + run.work)
        else:
            shutil.rmtree(run.work, ignore_errors=True)


if __name__ == "__main__":
    main()
