#!/usr/bin/env python3
"""The built-in dashboard in a real browser (issue 8, part 4, browser half).

Starts billnet-server on loopback ports with a model repository (default: a
tiny random model made by billnet-model), streams clips through it with
billnet-client (plus one undecodable stream and one call for an unknown
model), and while the traffic runs opens GET /dashboard in Debian's headless
Chromium (--dump-dom: the DOM after the page's scripts ran) until the charts
show live data: throughput above 0, latency points, a stream's heat map.
After the traffic stops it opens the page again and compares what the page
shows with /metrics read right after: every counter and gauge exactly, every
latency quantile within the histogram bucket /metrics puts it in. The page
keeps each shown number's raw value in its element's data-value attribute.

Usage: dashboard_browser_test.py --build BUILD_DIR --source SOURCE_DIR
         [--repo MODEL_REPOSITORY --model NAME]   (default: a tiny random model)
         [--clips GLOB] [--concurrency N] [--screenshot PNG]
--screenshot writes a screenshot of the page taken while clips stream
(docs/images/dashboard.png is made this way with the shipped model).
Exit 0: pass; 1: fail; 77: chromium is not installed.
"""
import argparse
import glob
import html.parser
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


class Failure(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, check, timeout_s, proc=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Failure("billnet-server exited (%d) while waiting for %s" % (proc.returncode, what))
        try:
            value = check()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            pass
        time.sleep(0.25)
    raise Failure("timed out after %d s waiting for %s" % (timeout_s, what))


def find_chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


# ---- /metrics ------------------------------------------------------------------

def parse_metrics(text):
    """[(name, {label: value}, value)] of the text exposition format."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            raise Failure("unparsable /metrics line: " + line)
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def metric_sum(samples, name, **match):
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in match.items()))


def phase_buckets(samples, phase):
    """[(upper bound, cumulative count)] of a phase, summed over models."""
    by_le = {}
    for n, l, v in samples:
        if n == "billnet_window_latency_seconds_bucket" and l.get("phase") == phase:
            le = math.inf if l["le"] == "+Inf" else float(l["le"])
            by_le[le] = by_le.get(le, 0) + v
    return sorted(by_le.items())


def quantile_bucket(q, buckets):
    """The bucket (lower, upper) that holds the q-quantile's rank (None: empty)."""
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    for i, (le, count) in enumerate(buckets):
        if count >= rank:
            if le == math.inf:
                return (buckets[i - 1][0], buckets[i - 1][0])
            return (0.0 if i == 0 else buckets[i - 1][0], le)
    return None


# ---- the page --------------------------------------------------------------------

class PageValues(html.parser.HTMLParser):
    """Every element's data-key -> data-value, the canvases' data-* and the body's."""

    def __init__(self):
        super().__init__()
        self.values, self.texts, self.canvases, self.body = {}, {}, {}, {}
        self._open_key = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "canvas" and "id" in a:
            self.canvases[a["id"]] = a
        if "data-key" in a and "data-value" in a:
            self.values[a["data-key"]] = a["data-value"]
            self._open_key = a["data-key"]
            self.texts[self._open_key] = ""

    def handle_data(self, data):
        if self._open_key:
            self.texts[self._open_key] += data

    def handle_endtag(self, tag):
        self._open_key = None


class Run:
    def __init__(self, args, chromium):
        self.args = args
        self.chromium = chromium
        self.work = tempfile.mkdtemp(prefix="billnet-dashboard-")
        self.build = os.path.abspath(args.build)
        self.source = os.path.abspath(args.source)
        self.server = None
        self.clients = []

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
        self.server_log = os.path.join(self.work, "server.log")
        self.server = subprocess.Popen([
            os.path.join(self.build, "server", "billnet-server"), "--listen", "127.0.0.1:0",
            "--metrics-listen", "127.0.0.1:0", "--model-repository", repo, "--default-model", model,
            "--poll-interval-ms", "0", "--ready-file", ready, "--log-level", "info"],
            stdout=open(self.server_log, "w"), stderr=subprocess.STDOUT)
        wait_for("the server's ready file", lambda: os.path.getsize(ready) > 0, 120, self.server)
        grpc_port, metrics_port = open(ready).read().split()
        self.grpc_addr = "127.0.0.1:" + grpc_port
        self.base = "http://127.0.0.1:" + metrics_port
        log("server: gRPC %s, metrics and dashboard %s" % (self.grpc_addr, self.base))

    def stop(self):
        for p in self.clients:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    def client(self, *argv):
        cmd = [os.path.join(self.build, "client", "billnet-client"), "--server", self.grpc_addr] + list(argv)
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)

    def metrics(self):
        return parse_metrics(http_get(self.base + "/metrics"))

    def browse(self, extra=(), path="/dashboard", size="1400,1250"):
        """Runs headless Chromium on the page for a few (virtual) seconds."""
        profile = tempfile.mkdtemp(dir=self.work, prefix="chromium-")
        cmd = [self.chromium, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
               "--user-data-dir=" + profile, "--virtual-time-budget=4000", "--window-size=" + size,
               "--hide-scrollbars"] + list(extra) + [self.base + path]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        if p.returncode != 0:
            raise Failure("chromium exited %d: %s" % (p.returncode, p.stderr[-2000:]))
        return p.stdout

    def page(self):
        dom = self.browse(["--dump-dom"])
        values = PageValues()
        values.feed(dom)
        if int(values.body.get("data-updates", "0")) < 1:
            raise Failure("the page never rendered data.json (data-updates=0): " +
                          re.sub(r"\s+", " ", dom)[:2000])
        return values

    # ---- traffic ----

    def clips(self):
        pattern = self.args.clips or os.path.join(self.source, "samples", "clips", "*.mp4")
        found = sorted(glob.glob(pattern))
        if not found:
            raise Failure("no clips match " + pattern)
        return found

    def stream_clips(self, stop, concurrency):
        """Streams the clips in a loop, `concurrency` at a time, until stop is set."""
        clips = self.clips()
        done, failed = [], []

        def worker(offset):
            i = offset
            while not stop.is_set():
                r = self.client("stream", clips[i % len(clips)])
                if r.returncode != 0:
                    # Counted by the server like any other call: the comparison holds.
                    log("warning: a client failed (%s): %s" % (clips[i % len(clips)],
                                                               r.stdout.strip().splitlines()[-1:]))
                    failed.append(clips[i % len(clips)])
                else:
                    done.append(clips[i % len(clips)])
                i += concurrency

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(concurrency)]
        for t in threads:
            t.start()
        return threads, done, failed


def check_live(values):
    """True when the charts show live data."""
    c = values.canvases
    try:
        return (float(c["chart-rates"].get("data-max", "0")) > 0
                and int(c["chart-total"].get("data-points", "0")) > 0
                and int(c["heatmap"].get("data-cells", "0")) > 0
                and float(values.values.get("totals.windows", "0")) > 0)
    except (KeyError, ValueError):
        return False


def compare(values, samples):
    """The page's numbers against /metrics: counters and gauges exactly,
    quantiles within their bucket. Returns the list of mismatches."""
    errors = []
    v = values.values

    def shown(key):
        if key not in v:
            errors.append("the page shows no '%s'" % key)
            return None
        return None if v[key] == "null" else float(v[key])

    def same(key, want):
        got = shown(key)
        if got is not None and got != want:
            errors.append("%s: page %r, /metrics %r" % (key, got, want))
        log("  %-34s page %-12s /metrics %s" % (key, v.get(key), want))

    for key, family in [("windows", "billnet_windows_total"), ("frames", "billnet_frames_total"),
                        ("active_streams", "billnet_active_streams"),
                        ("dropped_windows", "billnet_dropped_windows_total"),
                        ("decode_errors", "billnet_decode_errors_total"),
                        ("engine_failures", "billnet_engine_failures_total")]:
        same("totals." + key, metric_sum(samples, family))
    refused = 0
    for reason in ("limit", "draining", "unknown_model", "bad_request"):
        n = metric_sum(samples, "billnet_refused_streams_total", reason=reason)
        refused += n
    same("totals.refused_sum", refused)
    same("totals.calls_sum", metric_sum(samples, "billnet_calls_total"))
    for phase in ("decode", "queue", "inference", "total"):
        buckets = phase_buckets(samples, phase)
        same("latency.%s.count" % phase, metric_sum(samples, "billnet_window_latency_seconds_count", phase=phase))
        for key, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            got = shown("latency.%s.%s" % (phase, key))
            bucket = quantile_bucket(q, buckets)
            log("  %-34s page %-12s /metrics bucket %s" % ("latency.%s.%s" % (phase, key), got, bucket))
            if bucket is None:
                if got is not None:
                    errors.append("latency.%s.%s: page %r, /metrics has no observation" % (phase, key, got))
            elif got is None or not (bucket[0] <= got <= bucket[1]):
                errors.append("latency.%s.%s: page %r outside the bucket %r" % (phase, key, got, bucket))
    # The active model and the kernel variant.
    active = ["%s v%s %s" % (l["model"], l["version"], l["stage"])
              for n, l, x in samples if n == "billnet_model_active" and x == 1]
    if values.texts.get("active_model") != ", ".join(active):
        errors.append("active model: page %r, /metrics %r" % (values.texts.get("active_model"), active))
    variants = [l["variant"] for n, l, x in samples if n == "billnet_kernel_variant_info" and x == 1]
    if values.texts.get("kernel_variant") not in variants:
        errors.append("kernel variant: page %r, /metrics %r" % (values.texts.get("kernel_variant"), variants))
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--repo")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--clips", help="glob of clips to stream (default: samples/clips/*.mp4)")
    ap.add_argument("--concurrency", type=int, default=3)
    ap.add_argument("--screenshot", help="also write a screenshot of the page under traffic here")
    ap.add_argument("--screenshot-after", type=float, default=30,
                    help="seconds of traffic before the screenshot")
    ap.add_argument("--screenshot-size", default="1400,1480", help="WIDTH,HEIGHT")
    args = ap.parse_args()
    chromium = find_chromium()
    if not chromium:
        log("SKIP: chromium is not installed (scripts/setup installs it)")
        return 77
    run = Run(args, chromium)
    try:
        run.start_server()
        # Before any traffic: the page renders, every counter at 0.
        values = run.page()
        if float(values.values.get("totals.windows", "-1")) != 0:
            raise Failure("before traffic the page shows %r windows" % values.values.get("totals.windows"))

        stop = threading.Event()
        threads, done, failed = run.stream_clips(stop, args.concurrency)
        live = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if len(failed) > 5 and not done:
                raise Failure("every client fails: " + ", ".join(failed))
            values = run.page()
            if check_live(values):
                live = values
                break
        if not live:
            raise Failure("the charts never showed live data: %r" % values.canvases)
        log("live: windows/s chart max %s, %s latency points, heat map %s cells, %s windows so far" % (
            live.canvases["chart-rates"]["data-max"], live.canvases["chart-total"]["data-points"],
            live.canvases["heatmap"]["data-cells"], live.values["totals.windows"]))
        if args.screenshot:
            time.sleep(args.screenshot_after)  # traffic goes on: fuller charts
            # The heat map of a stream with a few windows (running if one has them).
            def long_stream():
                d = json.loads(http_get(run.base + "/dashboard/data.json"))
                ok = [x for x in d["streams"] if x["windows"] >= 4]
                return max(ok, key=lambda x: (x["ended"] is None, x["id"])) if ok else None
            stream = wait_for("a stream with 4 windows", long_stream, 180, run.server)
            run.browse(["--screenshot=" + os.path.abspath(args.screenshot)],
                       path="/dashboard?stream=%d" % stream["id"], size=args.screenshot_size)
            log("screenshot: %s (stream #%d %s)" % (args.screenshot, stream["id"], stream["stream_id"]))
        stop.set()
        for t in threads:
            t.join(timeout=300)
        if not done:
            raise Failure("no clip was streamed to its end")

        # Error traffic: an undecodable stream and a call for an unknown model.
        junk = os.path.join(run.work, "junk.mkv")
        with open(junk, "wb") as f:
            f.write(bytes(range(256)) * 64)
        if run.client("stream", "--passthrough", junk).returncode == 0:
            raise Failure("an undecodable stream succeeded")
        if run.client("classify", "--model", "no-such-model", run.clips()[0]).returncode == 0:
            raise Failure("a stream for an unknown model succeeded")
        wait_for("no active stream", lambda: metric_sum(run.metrics(), "billnet_active_streams") == 0, 60,
                 run.server)

        # After the traffic: the page against /metrics.
        values = run.page()
        samples = run.metrics()
        log("after %d clips streamed (%d clients failed):" % (len(done), len(failed)))
        errors = compare(values, samples)
        if metric_sum(samples, "billnet_decode_errors_total") < 1:
            errors.append("the undecodable stream was not counted")
        if metric_sum(samples, "billnet_refused_streams_total", reason="unknown_model") < 1:
            errors.append("the unknown-model call was not counted")
        if errors:
            raise Failure("the page differs from /metrics:\n  " + "\n  ".join(errors))
        log("PASS: the page equals /metrics (counters and gauges exactly, quantiles within one bucket)")
        return 0
    except (Failure, subprocess.TimeoutExpired, OSError) as e:
        log("FAIL: %s" % e)
        if run.server is not None and os.path.exists(run.server_log):
            lines = open(run.server_log).read().splitlines()
            log("---- billnet-server log (last 30 lines) ----\n" + "\n".join(lines[-30:]))
        return 1
    finally:
        run.stop()
        shutil.rmtree(run.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
