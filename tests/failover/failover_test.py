#!/usr/bin/env python3
"""Streams that survive the loss of a replica, proved on loopback (issue 9, parts 1-2).

Three billnet-server replicas (a tiny random model, one JSON config file with the shared
token key, as deploy/k8s gives every pod) run behind Debian's HAProxy, configured from the
shipped deploy/k8s/proxy.yaml (loopback addresses instead of the cluster's DNS, maxconn
within a test machine's file limit; everything else as shipped: h2 on both sides, leastconn,
retries and redispatch, TCP checks). Six billnet-client
streams run through the proxy at once, each from its own clip written into a FIFO by the
test, so the test decides how far each stream can get before a replica goes away:

  codec (client side)      what the server receives        what must hold after a resume
  default (FFV1)  x2       model frames, lossless           windows equal an undisturbed run's
  --codec mjpeg   x2       model frames, intra-only         windows equal an undisturbed run's
  --passthrough   x2       the H.264 file (B-frames)        same windows, same top labels

The undisturbed run is each clip streamed from its file straight to one replica (no proxy,
nothing killed) before the test starts. Every stream must end with exit 0 and print windows
0..N-1, each once, no state reset, N as in the undisturbed run.

Scenarios (--scenario):
  kill     the first part of every clip is written; once every stream has printed 2
           windows, the replica with the most streams (its /metrics gauge, and its log for
           which ones; preferring one that carries both kinds) is SIGKILLed, then the rest
           of the clips is written (a client notices the lost call when its writer gets the
           next bytes). Exactly its streams report the lost connection and resume through
           the proxy on the other replicas, at a window no earlier than they had printed.
  rolling  a rolling restart: each replica in turn gets SIGTERM (it drains: its file
           streams end UNAVAILABLE after --drain-timeout-ms, 1 s here), must exit 0, and
           starts again on the same ports with the same config; the proxy must see it up
           before the next one goes. Between restarts one more part of every clip is
           written and every stream must make progress. Every stream a drained replica
           carried resumes exactly once, and the clients saw UNAVAILABLE only.

No assertion is on a duration: the test waits for events (windows printed, resumes,
process exits, the proxy's server states) with generous timeouts that only stop a hang.

Usage: failover_test.py --scenario kill|rolling --server-bin B --client-bin B --model-bin B
                        --source SOURCE_DIR [--keep]
Exit 0: pass; 1: fail; 77: haproxy or ffmpeg/ffprobe is not installed.
"""
import argparse
import concurrent.futures
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

# Generous limits: they only stop a hung test.
WAIT_S = 90
CLIP_SECONDS = 32   # at 12 fps; 6 fps model frames: 192, i.e. 12 windows of 16
SOURCE_FPS = 12


class Failure(Exception):
    pass


START = time.monotonic()


def log(msg):
    print("[%5.1f s] %s" % (time.monotonic() - START, msg), flush=True)


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


_ports_given = set()


def free_port():
    """A free loopback port below the kernel's ephemeral range, so that no outgoing
    connection takes it while a replica restarts on it; never the same one twice."""
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        if port in _ports_given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise Failure("no free port below %d" % low)


def wait_for(what, check, timeout_s=WAIT_S, alive=()):
    """Polls check() until it returns a true value; fails when one of `alive`
    (objects with a `dead()` method returning a message or None) reports."""
    deadline = time.monotonic() + timeout_s
    while True:
        for a in alive:
            msg = a.dead()
            if msg:
                raise Failure("%s, while waiting for %s" % (msg, what))
        try:
            value = check()
            if value:
                return value
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise Failure("timed out after %d s waiting for %s" % (timeout_s, what))
        time.sleep(0.1)


# ---- replicas ------------------------------------------------------------------------------

class Replica:
    """One billnet-server process; restarts keep its ports."""

    def __init__(self, work, index, server_bin, config):
        self.work, self.index, self.server_bin, self.config = work, index, server_bin, config
        self.name = "replica%d" % index
        self.proxy_name = "billnet%d" % index  # its server line in the proxy
        self.grpc_port, self.metrics_port = free_port(), free_port()
        self.proc = None
        self.starts = 0
        self.expect_exit = False

    def start(self):
        self.starts += 1
        ready = os.path.join(self.work, "%s.ready.%d" % (self.name, self.starts))
        self.log_path = os.path.join(self.work, "%s.%d.log" % (self.name, self.starts))
        out = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [self.server_bin, "--config", self.config,
             "--listen", "127.0.0.1:%d" % self.grpc_port,
             "--metrics-listen", "127.0.0.1:%d" % self.metrics_port, "--ready-file", ready],
            stdout=out, stderr=subprocess.STDOUT)
        self.expect_exit = False
        wait_for("%s's ready file" % self.name, lambda: os.path.getsize(ready) > 0, alive=[self])
        ports = tuple(map(int, open(ready).read().split()))
        if ports != (self.grpc_port, self.metrics_port):
            raise Failure("%s serves on %s, not on its ports %d %d"
                          % (self.name, ports, self.grpc_port, self.metrics_port))

    def started_streams(self):
        """stream ids of the Stream calls this process started, in order."""
        return re.findall(r"stream started stream_id=(\S+)", open(self.log_path).read())

    def dead(self):
        if not self.expect_exit and self.proc.poll() is not None:
            return "%s exited (%d)" % (self.name, self.proc.returncode)
        return None

    def active_streams(self):
        text = http_get("http://127.0.0.1:%d/metrics" % self.metrics_port)
        return int(sum(float(v) for v in
                       re.findall(r"(?m)^billnet_active_streams(?:\{[^}]*\})? (\S+)$", text)))

    def kill(self):
        self.expect_exit = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=WAIT_S)

    def drain(self):
        """SIGTERM; returns the exit code."""
        self.expect_exit = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            raise Failure("%s did not exit within %d s of SIGTERM" % (self.name, WAIT_S))

    def tail(self):
        text = open(self.log_path).read() if self.proc else ""
        return "\n".join(text.splitlines()[-25:])


# ---- the proxy -----------------------------------------------------------------------------

def proxy_config(source, work, frontend_port, admin_port, replicas):
    """The shipped HAProxy config (deploy/k8s/proxy.yaml, haproxy.cfg) for loopback: the
    DNS server template replaced by the replicas' addresses, binds on 127.0.0.1."""
    yaml_path = os.path.join(source, "deploy", "k8s", "proxy.yaml")
    lines = open(yaml_path).read().splitlines()
    start = next((i for i, l in enumerate(lines) if re.match(r"\s*haproxy\.cfg:\s*\|\s*$", l)), None)
    if start is None:
        raise Failure("%s: no 'haproxy.cfg: |' block" % yaml_path)
    key_indent = len(lines[start]) - len(lines[start].lstrip())
    block = []
    for l in lines[start + 1:]:
        if l.strip() and len(l) - len(l.lstrip()) <= key_indent:
            break
        block.append(l)
    indent = min(len(l) - len(l.lstrip()) for l in block if l.strip())
    cfg = "\n".join(l[indent:] for l in block) + "\n"
    servers = "".join("\\1server billnet%d 127.0.0.1:%d\n" % (r.index, r.grpc_port) for r in replicas)
    edits = [
        # A test machine's file descriptor limit (haproxy wants 2 per connection).
        (r"(?m)^(\s*maxconn) \d+$", r"\1 1000"),
        # Static loopback upstreams instead of the headless Service's DNS answers.
        (r"(?m)^(\s*)server-template \S+ \d+ \S+\n", servers),
        (r"(?m)^(\s*default-server .*?) resolvers \S+", r"\1"),
        (r"(?m)^(\s*default-server .*?) resolve-prefer \S+", r"\1"),
        (r"(?m)^(\s*default-server .*?) init-addr \S+", r"\1"),
        (r"(?ms)^resolvers .*?(?=^\S)", ""),
        (r"(?m)^(\s*)bind :\d+ proto h2$", r"\g<1>bind 127.0.0.1:%d proto h2" % frontend_port),
        (r"(?m)^(\s*)bind :\d+$", r"\g<1>bind 127.0.0.1:%d" % admin_port),
    ]
    for pattern, repl in edits:
        cfg, n = re.subn(pattern, repl, cfg)
        if n != 1:
            raise Failure("%s: %d matches for %s (the test's edit)" % (yaml_path, n, pattern))
    path = os.path.join(work, "haproxy.cfg")
    open(path, "w").write(cfg)
    return path


class Proxy:
    def __init__(self, work, source, replicas):
        self.port, self.admin_port = free_port(), free_port()
        self.cfg = proxy_config(source, work, self.port, self.admin_port, replicas)
        check = subprocess.run(["haproxy", "-c", "-f", self.cfg], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        if check.returncode != 0:
            raise Failure("haproxy -c on the test's copy:\n" + check.stdout)
        self.log_path = os.path.join(work, "haproxy.log")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.cfg],
                                     stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        self.address = "127.0.0.1:%d" % self.port

    def dead(self):
        if self.proc.poll() is not None:
            return "haproxy exited (%d)" % self.proc.returncode
        return None

    def server_states(self):
        """{server name: status} of the backend, from the stats page's CSV."""
        text = http_get("http://127.0.0.1:%d/stats;csv" % self.admin_port)
        rows = [l.split(",") for l in text.splitlines() if l and not l.startswith("#")]
        return {r[1]: r[17] for r in rows if r[0] == "billnet_servers" and r[1] != "BACKEND"}

    def wait_up(self, names):
        wait_for("the proxy to see %s up" % ", ".join(names),
                 lambda: all(self.server_states().get(n) == "UP" for n in names), alive=[self])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=WAIT_S)

    def tail(self):
        return "\n".join(open(self.log_path).read().splitlines()[-30:])


# ---- clips and streams ---------------------------------------------------------------------

class Clip:
    def __init__(self, work, name, kind, seed):
        self.name, self.kind = name, kind
        self.path = os.path.join(work, "clips", name + ".mkv")
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        # Conway's life from a seeded random start: every clip differs, and a random
        # model gives varied labels on it.
        graph = "life=s=160x120:r=%d:seed=%d:mold=10:ratio=0.35,format=yuv420p" % (SOURCE_FPS, seed)
        codec = (["-c:v", "mjpeg", "-q:v", "3"] if kind == "mjpeg" else
                 ["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "24"])
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", graph, "-t", str(CLIP_SECONDS)] + codec +
                       ["-f", "matroska", self.path], check=True)
        self.data = open(self.path, "rb").read()
        # Byte offset of each source frame's packet, in presentation order: a prefix up
        # to frame k's offset holds every packet stored before it.
        probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v",
                                "-show_entries", "packet=pos,pts_time", "-of", "csv=p=0",
                                self.path], check=True, stdout=subprocess.PIPE, text=True)
        packets = sorted((float(t), int(p)) for t, p in
                         (l.split(",")[:2] for l in probe.stdout.split()))
        self.frame_pos = [p for _, p in packets]

    def offset(self, fraction):
        """A byte offset that holds about `fraction` of the frames (cut before a packet)."""
        if fraction >= 1:
            return len(self.data)
        return self.frame_pos[int(len(self.frame_pos) * fraction)]


class Stream:
    """One billnet-client stream of a clip from a FIFO the test fills part by part."""

    def __init__(self, work, client_bin, address, clip, client_args, exact, fifo=True):
        self.clip, self.exact = clip, exact
        self.name = clip.name
        self.lock = threading.Lock()
        self.out, self.err = [], []
        self.written = 0
        if fifo:
            self.source = os.path.join(work, "pipes", clip.name + "-via-proxy.mkv")
            os.makedirs(os.path.dirname(self.source), exist_ok=True)
            os.mkfifo(self.source)
        else:
            self.source = clip.path
        self.stream_id = os.path.basename(self.source)  # the client's stream id
        argv = [client_bin, "--server", address, "stream", self.source, "--json",
                "--reconnect-seconds", "60"] + client_args
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.readers = [threading.Thread(target=self._read, args=(pipe, sink), daemon=True)
                        for pipe, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self.readers:
            t.start()
        if fifo:
            self.parts = []
            self.cv = threading.Condition()
            threading.Thread(target=self._feed, daemon=True).start()

    def _read(self, pipe, sink):
        for line in pipe:
            with self.lock:
                sink.append(line.rstrip("\n"))

    def _feed(self):
        try:
            with open(self.source, "wb") as f:  # blocks until the client opens the FIFO
                while True:
                    with self.cv:
                        self.cv.wait_for(lambda: self.parts)
                        end = self.parts.pop(0)
                    if end > self.written:
                        f.write(self.clip.data[self.written:end])
                        f.flush()
                        self.written = end
                    if end >= len(self.clip.data):
                        return
        except OSError:  # the client went away: its exit code tells
            pass

    def feed(self, fraction):
        with self.cv:
            self.parts.append(self.clip.offset(fraction))
            self.cv.notify()

    def dead(self):
        code = self.proc.poll()
        if code is not None and code != 0:
            return "stream %s: billnet-client exited %d:\n%s" % (self.name, code, self.stderr())
        return None

    def lines(self, kind):
        with self.lock:
            out = list(self.out)
        objs = []
        for l in out:
            try:
                obj = json.loads(l)
            except ValueError:
                raise Failure("stream %s: not JSON: %r" % (self.name, l))
            if obj.get("type") == kind:
                objs.append(obj)
        return objs

    def windows(self):
        return self.lines("window")

    def stderr(self):
        with self.lock:
            return "\n".join(self.err)

    def count(self, text):
        return self.stderr().count(text)

    def wait(self):
        try:
            self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            raise Failure("stream %s: billnet-client did not finish" % self.name)
        for t in self.readers:  # they end at EOF
            t.join(timeout=WAIT_S)
        return self.proc.returncode

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# The fields of a window the comparisons use (latency_s is a measurement).
EXACT_FIELDS = ("sequence", "label", "label_index", "probability", "first_ts", "last_ts",
                "padded", "top_label")
INTER_FIELDS = ("sequence", "first_ts", "last_ts", "padded", "top_label")


def check_stream(s, want):
    """Every window exactly once, as in the undisturbed run `want`."""
    code = s.proc.returncode
    if code != 0:
        raise Failure("stream %s: exit %d\n%s" % (s.name, code, s.stderr()))
    got = s.windows()
    seqs = [w["sequence"] for w in got]
    if seqs != list(range(len(want))):
        raise Failure("stream %s: window numbers %s, want 0..%d each once\n%s"
                      % (s.name, seqs, len(want) - 1, s.stderr()))
    fields = EXACT_FIELDS if s.exact else INTER_FIELDS
    for g, w in zip(got, want):
        if "state_reset" in g:
            raise Failure("stream %s: window %d: state reset: %s" % (s.name, g["sequence"], g["state_reset"]))
        for f in fields:
            if g.get(f) != w.get(f):
                raise Failure("stream %s: window %d: %s is %r, the undisturbed run's %r"
                              % (s.name, g["sequence"], f, g.get(f), w.get(f)))
    for st in s.lines("started")[1:]:
        if not st.get("resumed") or "state_reset_reason" in st:
            raise Failure("stream %s: a reconnect did not resume: %s" % (s.name, st))
    summary = s.lines("summary")
    if len(summary) != 1:
        raise Failure("stream %s: %d summaries" % (s.name, len(summary)))
    return summary[0]["connections"]


# ---- the test ------------------------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="billnet-failover-")
        self.replicas, self.streams = [], []
        self.proxy = None

    def make_repo(self):
        repo = os.path.join(self.work, "repo")
        os.makedirs(os.path.join(repo, "tiny", "1"))
        for s in ("s1", "s2", "s3", "s4", "s5"):
            subprocess.run([self.args.model_bin, "random", "--stage", s, "--seed", "3", "--name", "tiny",
                            "--base-channels", "8", "--groups", "2", "--height", "24", "--width", "32",
                            "-o", os.path.join(repo, "tiny", "1", s + ".safetensors")],
                           check=True, stdout=subprocess.DEVNULL)
        return repo

    def start_replicas(self):
        key = os.path.join(self.work, "token.key")
        with open(key, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        config = os.path.join(self.work, "server.json")
        with open(config, "w") as f:
            # One file for every replica, as deploy/k8s's ConfigMap; the key is shared.
            json.dump({"model_repository": self.make_repo(), "token_key_file": key,
                       "poll_interval_ms": 0, "inference_threads": 1, "http_threads": 1,
                       "drain_timeout_ms": 1000, "log_level": "info"}, f)
        self.replicas = [Replica(self.work, i, self.args.server_bin, config) for i in range(3)]
        for r in self.replicas:
            r.start()
        log("replicas: " + ", ".join("%s gRPC %d metrics %d" % (r.name, r.grpc_port, r.metrics_port)
                                     for r in self.replicas))

    def make_clips(self):
        # Started in this order: kinds alternate, so that a replica is likely to carry two.
        specs = [("ffv1-a", "mjpeg", [], True),
                 ("h264-a", "h264", ["--passthrough"], False),
                 ("mjpeg-a", "mjpeg", ["--codec", "mjpeg"], True),
                 ("h264-b", "h264", ["--passthrough"], False),
                 ("ffv1-b", "mjpeg", [], True),
                 ("mjpeg-b", "mjpeg", ["--codec", "mjpeg"], True)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            clips = list(pool.map(lambda i: Clip(self.work, specs[i][0], specs[i][1], seed=11 + i),
                                  range(len(specs))))
        self.specs = [(clip, args, exact) for clip, (_, _, args, exact) in zip(clips, specs)]

    def undisturbed(self):
        """Each clip from its file, straight to one replica (no proxy), all at once."""
        refs = [Stream(self.work, self.args.client_bin,
                       "127.0.0.1:%d" % self.replicas[i % 3].grpc_port, clip, args, exact, fifo=False)
                for i, (clip, args, exact) in enumerate(self.specs)]
        self.want = {}
        for s in refs:
            if s.wait() != 0:
                raise Failure("undisturbed run of %s: exit %d\n%s" % (s.name, s.proc.returncode, s.stderr()))
            w = s.windows()
            if len(w) < 8 or [x["sequence"] for x in w] != list(range(len(w))):
                raise Failure("undisturbed run of %s: windows %s" % (s.name, [x["sequence"] for x in w]))
            self.want[s.name] = w
        labels = {l for w in self.want.values() for x in w for l in x["top_label"]}
        log("undisturbed: %s windows; %d distinct step labels" % (
            ", ".join("%s %d" % (n, len(w)) for n, w in self.want.items()), len(labels)))

    def start_streams(self):
        self.streams = [Stream(self.work, self.args.client_bin, self.proxy.address, clip, args, exact)
                        for clip, args, exact in self.specs]

    def alive(self):
        return [self.proxy] + [r for r in self.replicas] + self.streams

    def feed_and_wait(self, fraction, at_least):
        """Writes each clip up to `fraction`; waits until each stream has printed
        more windows than at_least[name]; returns the counts."""
        for s in self.streams:
            s.feed(fraction)
        wait_for("windows beyond %s" % at_least,
                 lambda: all(len(s.windows()) > at_least.get(s.name, 0) for s in self.streams),
                 alive=self.alive())
        return {s.name: len(s.windows()) for s in self.streams}

    def resumes(self):
        return sum(s.count("resumed at window ") for s in self.streams)

    def finish_streams(self):
        for s in self.streams:
            s.feed(1.0)
        moved = 0
        for s in self.streams:
            s.wait()
        for s in self.streams:
            connections = check_stream(s, self.want[s.name])
            moved += connections > 1
            same = all(g.get(f) == w.get(f) for g, w in zip(s.windows(), self.want[s.name])
                       for f in EXACT_FIELDS)
            log("stream %s: %d windows, each once, %s; %d connection(s)%s" % (
                s.name, len(s.windows()),
                "equal to the undisturbed run" if same else "top labels as the undisturbed run",
                connections,
                ": " + "; ".join(l.replace("billnet-client: ", "") for l in s.stderr().splitlines()
                                 if "resumed" in l or "connection lost" in l)
                if connections > 1 else ""))
        return moved

    def placement(self):
        """{replica index: names of the proxied streams it started}, from the logs."""
        ids = {s.stream_id: s.name for s in self.streams}
        return {r.index: [ids[i] for i in r.started_streams() if i in ids] for r in self.replicas}

    def scenario_kill(self):
        counts = self.feed_and_wait(0.4, {s.name: 1 for s in self.streams})
        wait_for("the replicas' gauges to count %d streams" % len(self.streams),
                 lambda: sum(r.active_streams() for r in self.replicas) == len(self.streams),
                 alive=self.alive())
        active = [r.active_streams() for r in self.replicas]
        placed = self.placement()
        if [len(placed[r.index]) for r in self.replicas] != active:
            raise Failure("the replicas' logs place the streams %s, their gauges count %s" % (placed, active))
        log("windows before the kill: %s; streams per replica: %s" % (counts, placed))
        # The replica with the most streams; among those, one that carries both an exact
        # (FFV1/MJPEG) and a passthrough stream when there is one.
        exact = {s.name: s.exact for s in self.streams}
        victim = max(self.replicas, key=lambda r: (
            len(placed[r.index]), len({exact[n] for n in placed[r.index]})))
        carried = sorted(placed[victim.index])
        log("SIGKILL %s (streams %s)" % (victim.name, ", ".join(carried)))
        victim.kill()
        others = [r for r in self.replicas if r is not victim]
        # A client notices the lost call when its writer gets the next bytes of its
        # source (it reads the FIFO as it sends), so the rest goes in now.
        self.finish_streams()
        lost = sorted(s.name for s in self.streams if s.count("connection lost: "))
        moved = sorted(s.name for s in self.streams if len(s.lines("started")) > 1)
        if lost != carried or moved != carried:
            raise Failure("streams that lost their connection: %s, that reconnected: %s; %s carried %s"
                          % (lost, moved, victim.name, carried))
        for s in self.streams:
            if s.name not in carried:
                continue
            m = re.search(r"resumed at window (\d+)", s.stderr())
            if not m or not counts[s.name] <= int(m.group(1)) < len(self.want[s.name]):
                raise Failure("stream %s: resumed at %s, after %d windows were printed:\n%s"
                              % (s.name, m and m.group(1), counts[s.name], s.stderr()))
        wait_for("no active streams on the other replicas",
                 lambda: sum(r.active_streams() for r in others) == 0, alive=others)

    def scenario_rolling(self):
        counts = self.feed_and_wait(0.2, {})
        expected_resumes = 0
        fraction = 0.2
        for r in self.replicas:
            carried = r.active_streams()
            if carried == 0:
                raise Failure("%s carries no stream before its restart" % r.name)
            log("windows so far: %s; SIGTERM %s (%d active streams)" % (counts, r.name, carried))
            code = r.drain()
            if code != 0:
                raise Failure("%s exited %d after SIGTERM:\n%s" % (r.name, code, r.tail()))
            expected_resumes += carried
            r.start()
            self.proxy.wait_up([x.proxy_name for x in self.replicas])
            # The cut clients resume when their writers get the next bytes.
            fraction += 0.2
            counts = self.feed_and_wait(fraction, counts)
            wait_for("%d resumes in all" % expected_resumes,
                     lambda: self.resumes() >= expected_resumes, alive=self.alive())
            if self.resumes() != expected_resumes:
                raise Failure("%d resumes, %d streams were on drained replicas"
                              % (self.resumes(), expected_resumes))
        moved = self.finish_streams()
        # What the drains said: UNAVAILABLE, never a call cut without a status.
        for s in self.streams:
            for l in s.stderr().splitlines():
                if "connection lost: " in l and "connection lost: unavailable" not in l:
                    raise Failure("stream %s: %s" % (s.name, l))
        log("%d resumes over %d streams" % (expected_resumes, moved))

    def run(self):
        self.start_replicas()
        self.make_clips()
        self.undisturbed()
        self.proxy = Proxy(self.work, self.args.source, self.replicas)
        self.proxy.wait_up([r.proxy_name for r in self.replicas])
        log("haproxy on %s (config from deploy/k8s/proxy.yaml)" % self.proxy.address)
        self.start_streams()
        if self.args.scenario == "kill":
            self.scenario_kill()
        else:
            self.scenario_rolling()

    def dump(self):
        for s in self.streams:
            log("---- stream %s (exit %s): stderr ----\n%s" % (s.name, s.proc.poll(), s.stderr()))
        for r in self.replicas:
            if r.proc:
                log("---- %s log (last lines) ----\n%s" % (r.name, r.tail()))
        if self.proxy:
            log("---- haproxy log (last lines) ----\n%s" % self.proxy.tail())

    def cleanup(self):
        for s in self.streams:
            s.stop()
        if self.proxy:
            self.proxy.stop()
        for r in self.replicas:
            if r.proc and r.proc.poll() is None:
                r.expect_exit = True
                r.proc.kill()
                r.proc.wait()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", choices=("kill", "rolling"), required=True)
    p.add_argument("--server-bin", required=True)
    p.add_argument("--client-bin", required=True)
    p.add_argument("--model-bin", required=True)
    p.add_argument("--source", required=True, help="the source tree (deploy/k8s/proxy.yaml)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    for tool in ("haproxy", "ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            log("SKIP: %s is not installed (scripts/setup installs it)" % tool)
            return 77
    run = Run(args)
    try:
        run.run()
    except (Failure, subprocess.CalledProcessError) as e:
        log("FAIL (%s): %s" % (args.scenario, e))
        run.dump()
        log("work directory: %s" % run.work)
        args.keep = True
        return 1
    finally:
        run.cleanup()
    log("failover %s: ok" % args.scenario)
    return 0


if __name__ == "__main__":
    sys.exit(main())
