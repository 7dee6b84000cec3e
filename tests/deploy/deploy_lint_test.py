#!/usr/bin/env python3
"""Lints the deployment files (issue 9 parts 3-4, docs/operations.md) without Docker or a cluster.

Dockerfiles (docker/*.Dockerfile): every instruction parsed (known keywords, line continuations,
JSON forms, flags); COPY sources exist in the repository and are not excluded by the Dockerfile's
.dockerignore, or come from an earlier stage; the folders the CMake build adds are in the build
context; --target names exist; multi-stage with a debian:12 build stage that runs scripts/setup;
the runtime stage runs as non-root, has a HEALTHCHECK (gRPC health through billnet-client on the
exposed port for the server), STOPSIGNAL SIGTERM, no -dev packages, and installs packages that
exist in Debian's archive (apt-cache) and, when a local build exists, cover every DT_NEEDED
library of the binaries it copies.
Compose (docker/compose.yaml): services, build files, bind sources, the token key secret (no
default), Prometheus (the project's rule files and job name, target = the server's metrics port,
`promtool check config`), Grafana (data source uid of the dashboard, provider path mounted).
Kubernetes (deploy/k8s/, every document): gRPC probes on the gRPC port, terminationGracePeriod >
preStop + drain timeout from the server's JSON config, resources, the token key from a Secret,
selectors vs labels, Service ports vs container ports, HPA target, PDB selector, the proxy's
upstreams vs the headless Service, every referenced ConfigMap/Secret/PVC defined, the config
accepted by billnet-server --print-config (when built), `haproxy -c` on the proxy config.
Finally it breaks the files on purpose (in memory) and requires each break to be reported.

Usage: deploy_lint_test.py [--source DIR] [--build DIR]. Exit 0: all good; 1: failures listed.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # python3-yaml is in scripts/setup
    print("SKIP: python3-yaml is not installed (scripts/setup installs it)")
    sys.exit(77)

KNOWN_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
                      "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
                      "HEALTHCHECK", "SHELL"}
FLAGS = {"FROM": {"--platform"}, "RUN": {"--mount", "--network", "--security"},
         "COPY": {"--from", "--chown", "--chmod", "--link", "--parents", "--exclude"},
         "ADD": {"--chown", "--chmod", "--link", "--checksum", "--keep-git-dir", "--exclude"},
         "HEALTHCHECK": {"--interval", "--timeout", "--start-period", "--start-interval", "--retries"}}
BASE_IMAGE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1", "zlib1g"}  # in debian:12-slim
# Guards of add_subdirectory() that are targets, mapped to the option that creates them.
TARGET_OPTIONS = {"billnet_media": "BILLNET_BUILD_MEDIA", "billnet_server_core": "BILLNET_BUILD_SERVER",
                  "billnet_client_core": "BILLNET_BUILD_SERVER"}
GRACE_MARGIN_S = 1
_CACHE = {}  # command -> CompletedProcess: apt-cache, dpkg, readelf, ldd answer once per run


def cached_run(argv):
    key = tuple(argv)
    if key not in _CACHE:
        _CACHE[key] = subprocess.run(argv, capture_output=True, text=True)
    return _CACHE[key]


class Lint:
    def __init__(self, root, build, overrides=None, quiet=False):
        self.root, self.build = root, build
        self.overrides = overrides or {}
        self.failures, self.quiet = [], quiet

    # -- files, through the in-memory overrides used by the self-test --
    def read(self, rel):
        if rel in self.overrides:
            return self.overrides[rel]
        with open(os.path.join(self.root, rel), encoding="utf-8") as f:
            return f.read()

    def exists(self, rel):
        return rel in self.overrides or os.path.exists(os.path.join(self.root, rel))

    def fail(self, where, msg):
        self.failures.append(f"{where}: {msg}")

    def note(self, msg):
        if not self.quiet:
            print("note: " + msg)

    # ================================ Dockerfiles ================================
    def parse_dockerfile(self, rel):
        instrs, buf, start = [], "", None
        for n, line in enumerate(self.read(rel).split("\n"), 1):
            s = line.strip()
            if start is None and (not s or s.startswith("#")):
                continue  # blank line, comment or parser directive
            if start is not None and (not s or s.startswith("#")):
                continue  # comments and blank lines inside a continuation are dropped
            if start is None:
                start = n
            if line.rstrip().endswith("\\"):
                buf += line.rstrip()[:-1] + " "
                continue
            buf += line
            instrs.append((start, buf.strip()))
            buf, start = "", None
        if start is not None:
            self.fail(f"{rel}:{start}", "line continuation runs past the end of the file")
        out = []
        for n, text in instrs:
            m = re.match(r"(\S+)\s*(.*)$", text, re.S)
            kw, args = m.group(1), m.group(2).strip()
            where = f"{rel}:{n}"
            if kw.upper() not in KNOWN_INSTRUCTIONS:
                self.fail(where, f"unknown instruction {kw!r}")
                continue
            if kw != kw.upper():
                self.fail(where, f"instruction {kw!r} not in upper case")
            if "<<" in args and kw.upper() in ("RUN", "COPY", "ADD"):
                self.fail(where, "heredocs are not supported by this lint")
            out.append(self.parse_instruction(where, kw.upper(), args))
        return [i for i in out if i]

    def split_flags(self, where, kw, args):
        flags, rest = {}, args
        while rest.startswith("--"):
            m = re.match(r"(--[a-z-]+)(?:=(\S*))?\s*(.*)$", rest, re.S)
            if not m:
                self.fail(where, f"{kw}: cannot parse flag in {rest!r}")
                break
            if m.group(1) not in FLAGS.get(kw, set()):
                self.fail(where, f"{kw}: unknown flag {m.group(1)}")
            flags[m.group(1)] = m.group(2) or ""
            rest = m.group(3)
        return flags, rest.strip()

    def json_or_shell(self, where, kw, args, allow_shell=True):
        if args.startswith("["):
            try:
                v = json.loads(args)
            except json.JSONDecodeError as e:
                self.fail(where, f"{kw}: JSON form does not parse ({e})")
                return None
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v) or not v:
                self.fail(where, f"{kw}: JSON form must be a non-empty list of strings")
                return None
            return v
        if not allow_shell:
            self.fail(where, f"{kw}: expected the JSON form")
        return ["/bin/sh", "-c", args]

    def parse_instruction(self, where, kw, args):
        ins = {"where": where, "kw": kw, "args": args}
        if not args and kw not in ("HEALTHCHECK",):
            self.fail(where, f"{kw} without arguments")
            return None
        if kw in ("FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"):
            ins["flags"], args = self.split_flags(where, kw, args)
            ins["rest"] = args
        if kw == "FROM":
            m = re.match(r"(\S+)(?:\s+[Aa][Ss]\s+([a-z0-9][a-z0-9_.-]*))?$", args)
            if not m:
                self.fail(where, f"FROM: cannot parse {args!r}")
                return None
            ins["image"], ins["name"] = m.group(1), m.group(2)
        elif kw in ("COPY", "ADD"):
            parts = json.loads(args) if args.startswith("[") else shlex.split(args)
            if len(parts) < 2:
                self.fail(where, f"{kw}: needs a source and a destination")
                return None
            ins["sources"], ins["dest"] = parts[:-1], parts[-1]
        elif kw in ("CMD", "ENTRYPOINT"):
            ins["argv"] = self.json_or_shell(where, kw, args)
        elif kw in ("SHELL",):
            ins["argv"] = self.json_or_shell(where, kw, args, allow_shell=False)
        elif kw == "VOLUME":
            ins["paths"] = self.json_or_shell(where, kw, args) if args.startswith("[") else args.split()
        elif kw == "EXPOSE":
            ins["ports"] = []
            for p in args.split():
                m = re.fullmatch(r"(\d+)(?:/(tcp|udp))?", p)
                if not m or not 0 < int(m.group(1)) < 65536:
                    self.fail(where, f"EXPOSE: bad port {p!r}")
                else:
                    ins["ports"].append(int(m.group(1)))
        elif kw == "STOPSIGNAL":
            if not re.fullmatch(r"SIG[A-Z0-9]+|\d+", args):
                self.fail(where, f"STOPSIGNAL: bad signal {args!r}")
        elif kw == "HEALTHCHECK":
            rest = ins["rest"]
            for f, v in ins["flags"].items():
                if f == "--retries" and not v.isdigit() or f != "--retries" and not re.fullmatch(r"\d+(ms|s|m|h)", v):
                    self.fail(where, f"HEALTHCHECK: bad value {f}={v}")
            if rest == "NONE":
                ins["check"] = None
            elif rest.startswith("CMD "):
                ins["check"] = self.json_or_shell(where, kw, rest[4:].strip())
            else:
                self.fail(where, "HEALTHCHECK: expected NONE or CMD ...")
        elif kw == "USER":
            if not re.fullmatch(r"[a-z0-9_][a-z0-9_.-]*(:[a-z0-9_][a-z0-9_.-]*)?", args):
                self.fail(where, f"USER: bad user {args!r}")
        elif kw in ("ENV", "LABEL"):
            toks = shlex.split(args)
            if not all("=" in t for t in toks) and not (kw == "ENV" and len(toks) >= 2 and "=" not in toks[0]):
                self.fail(where, f"{kw}: expected key=value pairs")
        elif kw == "WORKDIR":
            if not args.startswith("/"):
                self.fail(where, "WORKDIR: use an absolute path")
        elif kw == "ARG":
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(=\S*)?", args):
                self.fail(where, f"ARG: bad {args!r}")
        return ins

    def dockerignore(self, dockerfile_rel):
        for rel in (dockerfile_rel + ".dockerignore", ".dockerignore"):
            if self.exists(rel):
                pats = []
                for line in self.read(rel).split("\n"):
                    s = line.strip()
                    if not s or s.startswith("#"):
                        continue
                    neg = s.startswith("!")
                    p = s[1:].strip() if neg else s
                    p = os.path.normpath(p.lstrip("/"))
                    rx = re.escape(p).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
                    rx = rx.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
                    pats.append((neg, re.compile(rx + "$")))
                return rel, pats
        return None, []

    @staticmethod
    def ignored(pats, path):
        path = os.path.normpath(path)
        if path == ".":
            return False
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        excluded = False
        for neg, rx in pats:
            if any(rx.match(p) for p in prefixes):
                excluded = not neg
        return excluded

    def cmake_required_dirs(self, defines):
        """Folders the top-level CMakeLists.txt adds with these -D options."""
        text = self.read("CMakeLists.txt")
        options = {m.group(1): m.group(2) == "ON"
                   for m in re.finditer(r"option\((BILLNET_\w+)\s+\"[^\"]*\"\s+(ON|OFF)\)", text)}
        options.update({k: v == "ON" for k, v in defines.items()})
        stack, dirs, files = [], [], ["CMakeLists.txt"]

        def cond_true(c):
            """True/False from the BILLNET options it names; None when it names none (unknown:
            a dependency found or not), and then every branch counts as taken."""
            names = re.findall(r"BILLNET_BUILD_\w+", c)
            names += [TARGET_OPTIONS[t] for t in re.findall(r"TARGET\s+(\w+)", c) if t in TARGET_OPTIONS]
            return all(options.get(n, True) for n in names) if names else None

        for line in text.split("\n"):
            s = line.split("#")[0].strip()
            if m := re.match(r"if\s*\((.*)\)\s*$", s):
                v = cond_true(m.group(1))
                stack.append([v is not False, bool(v)])
            elif m := re.match(r"elseif\s*\((.*)\)\s*$", s):
                taken, v = stack[-1][1], cond_true(m.group(1))
                stack[-1] = [not taken and v is not False, taken or bool(v)]
            elif re.match(r"else\s*\(", s):
                stack[-1] = [not stack[-1][1], True]
            elif re.match(r"endif\s*\(", s):
                stack.pop()
            elif all(x[0] for x in stack):
                if m := re.match(r"add_subdirectory\(([^ )]+)\)", s):
                    dirs.append(m.group(1))
                elif m := re.match(r"include\(([^ )]+\.cmake)\)", s):
                    files.append(m.group(1))
        return dirs, files

    def executables(self):
        names = set()
        for d, _, fs in os.walk(self.root):
            if "/build" in d or "/." in d:
                continue
            if "CMakeLists.txt" in fs:
                rel = os.path.relpath(os.path.join(d, "CMakeLists.txt"), self.root)
                names.update(re.findall(r"add_executable\(\s*([\w-]+)", self.read(rel)))
        return names

    def apt_packages(self, run):
        m = re.search(r"apt-get install((?:\s+-\S+)*)\s+(.*?)(&&|$)", run, re.S)
        return [p for p in m.group(2).split() if not p.startswith("-")] if m else []

    def check_dockerfile(self, rel):
        instrs = self.parse_dockerfile(rel)
        stages = []
        for ins in instrs:
            if ins["kw"] == "FROM":
                stages.append({"name": ins["name"], "image": ins["image"], "instrs": [], "where": ins["where"],
                               "known": set()})
            elif not stages:
                if ins["kw"] != "ARG":
                    self.fail(ins["where"], f"{ins['kw']} before the first FROM")
            else:
                stages[-1]["instrs"].append(ins)
        if len(stages) < 2:
            self.fail(rel, "not a multi-stage build (a build stage and a runtime stage)")
            return
        build, runtime = stages[0], stages[-1]
        if build["image"] != "debian:12":
            self.fail(build["where"], f"build stage on {build['image']}, expected debian:12")
        if not re.fullmatch(r"debian:12(-slim)?", runtime["image"]):
            self.fail(runtime["where"], f"runtime stage on {runtime['image']}, expected debian:12(-slim)")
        ignore_file, pats = self.dockerignore(rel)
        if not ignore_file:
            self.fail(rel, "no .dockerignore for this Dockerfile (the whole repository would be sent)")
        names = {}
        for si, st in enumerate(stages):
            if st["name"]:
                if st["name"] in names:
                    self.fail(st["where"], f"stage name {st['name']} used twice")
                names[st["name"]] = si
            for ins in st["instrs"]:
                if ins["kw"] in ("COPY", "ADD"):
                    st["known"].add(ins["dest"].rstrip("/") or "/")
                    self.check_copy(rel, ins, si, stages, names, pats)
                elif ins["kw"] == "WORKDIR":
                    st["known"].add(ins["args"])
                elif ins["kw"] == "RUN":
                    st["known"].update(re.findall(r"(?<![\w.])(/[\w.+-]+(?:/[\w.+-]+)*)", ins["rest"]))
        build_runs = " ".join(i["rest"] for i in build["instrs"] if i["kw"] == "RUN")
        if "scripts/setup" not in build_runs:
            self.fail(rel, "the build stage does not run scripts/setup")
        cm = re.search(r"cmake -S .*?(?=&&|$)", build_runs, re.S)
        if not cm:
            self.fail(rel, "the build stage runs no `cmake -S ... -B ...` configure")
            defines = {}
        else:
            defines = dict(re.findall(r"-D(BILLNET_\w+)=(ON|OFF)", cm.group(0)))
        tm = re.search(r"cmake --build \S+ --target ((?:[\w-]+\s*)+)", build_runs)
        if not tm:
            self.fail(rel, "the build stage builds no explicit --target (build just what the image needs)")
        else:
            exes = self.executables()
            for t in tm.group(1).split():
                if t not in exes:
                    self.fail(rel, f"--target {t}: no add_executable({t}) in the source tree")
        # The build context holds what the CMake configuration adds.
        copies_all = any(i["kw"] == "COPY" and "." in i["sources"] and "--from" not in i["flags"]
                         for i in build["instrs"])
        if copies_all:
            dirs, files = self.cmake_required_dirs(defines)
            for d in dirs + files:
                if not self.exists(d):
                    self.fail(rel, f"the CMake build needs {d}, which does not exist")
                elif self.ignored(pats, d):
                    self.fail(rel, f"the CMake build needs {d}, excluded by {ignore_file}")
        # Runtime stage.
        users = [i for i in runtime["instrs"] if i["kw"] == "USER"]
        if not users:
            self.fail(runtime["where"], "the runtime stage sets no USER (it would run as root)")
        elif re.fullmatch(r"(root|0)(:.*)?", users[-1]["args"]):
            self.fail(users[-1]["where"], "the runtime stage runs as root; use a non-root user")
        hc = [i for i in runtime["instrs"] if i["kw"] == "HEALTHCHECK"]
        if not hc:
            self.fail(runtime["where"], "the runtime stage has no HEALTHCHECK")
        sig = [i for i in runtime["instrs"] if i["kw"] == "STOPSIGNAL"]
        if not sig or sig[-1]["args"] != "SIGTERM":
            self.fail(runtime["where"], "the runtime stage needs STOPSIGNAL SIGTERM (the server drains on it)")
        entry = [i for i in runtime["instrs"] if i["kw"] == "ENTRYPOINT"]
        if not entry:
            self.fail(runtime["where"], "the runtime stage has no ENTRYPOINT")
        runtime_runs = " ".join(i["rest"] for i in runtime["instrs"] if i["kw"] == "RUN")
        pkgs = self.apt_packages(runtime_runs)
        for p in pkgs:
            if p.endswith("-dev") or p in ("build-essential", "cmake", "ninja-build", "clang-14"):
                self.fail(rel, f"runtime stage installs build package {p}")
        self.check_packages_exist(rel, pkgs)
        exposed = [p for i in runtime["instrs"] if i["kw"] == "EXPOSE" for p in i["ports"]]
        if entry and entry[-1]["argv"] and entry[-1]["argv"][0] == "billnet-server":
            if 50051 not in exposed or 9464 not in exposed:
                self.fail(rel, f"server image exposes {exposed}, expected gRPC 50051 and metrics 9464")
            cmd = " ".join(hc[-1]["check"] or []) if hc else ""
            m = re.search(r"billnet-client\b.*--server\s+(127\.0\.0\.1|localhost):(\d+)\b.*\bhealth\b", cmd)
            if not m:
                self.fail(rel, "server HEALTHCHECK must run `billnet-client --server 127.0.0.1:PORT health`")
            elif int(m.group(2)) not in exposed:
                self.fail(rel, f"HEALTHCHECK probes port {m.group(2)}, not an exposed port")
            if hc and "exit 1" not in cmd:
                self.fail(rel, "HEALTHCHECK must map billnet-client's exit 3 to 1 (Docker reserves 2; `|| exit 1`)")
            copies = [i for i in runtime["instrs"] if i["kw"] == "COPY"]
            if not any("models" in " ".join(i["sources"]) for i in copies):
                self.fail(rel, "the server image does not copy the shipped models/")
            cmd_ins = [i for i in runtime["instrs"] if i["kw"] == "CMD"]
            if cmd_ins and "0.0.0.0:50051" not in " ".join(cmd_ins[-1]["argv"] or []):
                self.fail(rel, "the server's CMD must listen on 0.0.0.0:50051 inside the container")
        self.check_needed_libs(rel, build_runs, defines, pkgs)

    def check_copy(self, rel, ins, si, stages, names, pats):
        src_stage = ins["flags"].get("--from")
        for src in ins["sources"]:
            if src_stage is not None:
                if src_stage not in names or names[src_stage] >= si:
                    self.fail(ins["where"], f"COPY --from={src_stage}: no earlier stage of that name")
                    continue
                known = stages[names[src_stage]]["known"]
                s = src.rstrip("/")
                if not any(s == k or s.startswith(k.rstrip("/") + "/") for k in known):
                    self.fail(ins["where"], f"COPY --from={src_stage} {src}: the stage never creates it")
                continue
            if src.startswith("/") or ".." in src.split("/"):
                self.fail(ins["where"], f"COPY {src}: outside the build context")
            elif re.search(r"[*?\[]", src):
                import glob
                if not glob.glob(os.path.join(self.root, src)):
                    self.fail(ins["where"], f"COPY {src}: matches nothing")
            elif not self.exists(src):
                self.fail(ins["where"], f"COPY {src}: does not exist in the repository")
            elif self.ignored(pats, src):
                self.fail(ins["where"], f"COPY {src}: excluded by the .dockerignore")

    def check_packages_exist(self, rel, pkgs):
        if not shutil.which("apt-cache"):
            self.note("apt-cache not found: runtime package names not checked")
            return
        for p in pkgs:
            r = cached_run(["apt-cache", "show", "--no-all-versions", p])
            if r.returncode != 0 or not r.stdout.strip():
                self.fail(rel, f"runtime package {p} is not in Debian's archive (apt-cache show)")

    def check_needed_libs(self, rel, build_runs, defines, pkgs):
        """Every DT_NEEDED library of the binaries the image copies is in a runtime package."""
        bins = re.findall(r"/build/([\w/.-]+/billnet-[\w-]+)", build_runs)
        if not self.build or not bins or not shutil.which("readelf") or not shutil.which("dpkg"):
            self.note(f"{rel}: no local build: DT_NEEDED check skipped")
            return
        cache = os.path.join(self.build, "CMakeCache.txt")
        try:
            cached = dict(re.findall(r"^(BILLNET_BUILD_(?:MEDIA|SERVER|TRAINER)):BOOL=(ON|OFF)$",
                                     open(cache).read(), re.M))
        except OSError:
            cached = {}
        for k in ("BILLNET_BUILD_MEDIA", "BILLNET_BUILD_SERVER"):
            if k in defines and cached.get(k) != defines[k]:
                self.note(f"{rel}: local build has {k}={cached.get(k)}, the image {defines[k]}: "
                          "DT_NEEDED check skipped")
                return
        for b in sorted(set(bins)):
            path = os.path.join(self.build, b)
            if not os.path.exists(path):
                self.note(f"{rel}: {path} not built: DT_NEEDED check skipped for it")
                continue
            ldd = cached_run(["ldd", path]).stdout
            where = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M))
            needed = re.findall(r"\(NEEDED\).*\[(.+)\]",
                                cached_run(["readelf", "-d", path]).stdout)
            for lib in needed:
                if lib.startswith("ld-linux"):
                    continue  # the dynamic loader (libc6)
                lp = where.get(lib)
                if not lp:
                    self.fail(rel, f"{b}: {lib} not found by ldd")
                    continue
                owner = None
                for cand in (lp, lp[4:] if lp.startswith("/usr/") else "/usr" + lp):
                    r = cached_run(["dpkg", "-S", cand])
                    if r.returncode == 0:
                        owner = r.stdout.split(":")[0]
                        break
                if owner is None:
                    self.note(f"{rel}: {b}: {lib} ({lp}) belongs to no package")
                elif owner not in pkgs and owner not in BASE_IMAGE_PACKAGES:
                    self.fail(rel, f"{b} needs {lib} from {owner}, which the runtime stage does not install")

    # ================================ Compose ================================
    @staticmethod
    def expand(value):
        """${VAR:-default} -> default; ${VAR:?msg} -> None (required, no default)."""
        if re.search(r"\$\{\w+:?\?", value):
            return None
        return re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", value)

    def check_compose(self, rel):
        base = os.path.dirname(rel)
        try:
            doc = yaml.safe_load(self.read(rel))
        except yaml.YAMLError as e:
            self.fail(rel, f"does not parse: {e}")
            return
        svcs = doc.get("services") or {}
        for name in ("billnet-server", "prometheus", "grafana"):
            if name not in svcs:
                self.fail(rel, f"no service {name}")
        if any(n not in svcs for n in ("billnet-server", "prometheus", "grafana")):
            return
        norm = lambda p: os.path.normpath(os.path.join(base, p))
        mounts = {}
        for sname, svc in svcs.items():
            for v in svc.get("volumes") or []:
                if isinstance(v, dict) and v.get("type") == "bind":
                    src = self.expand(str(v["source"]))
                    if src is not None and not self.exists(norm(src)):
                        self.fail(rel, f"{sname}: bind source {v['source']} does not exist")
                    mounts.setdefault(sname, {})[v["target"]] = norm(src) if src else None
                elif isinstance(v, str) and ":" in v:
                    vol = v.split(":")[0]
                    if vol not in (doc.get("volumes") or {}) and not vol.startswith((".", "/", "$")):
                        self.fail(rel, f"{sname}: named volume {vol} is not declared")
            for p in svc.get("ports") or []:
                if not str(p).startswith("127.0.0.1:"):
                    self.fail(rel, f"{sname}: port {p} is published on every interface (no TLS/auth)")
        srv = svcs["billnet-server"]
        b = srv.get("build") or {}
        ctx = norm(b.get("context", "."))
        if not self.exists(os.path.join(ctx, b.get("dockerfile", "Dockerfile"))):
            self.fail(rel, f"billnet-server: dockerfile {b.get('dockerfile')} not found in context {ctx}")
        env = srv.get("environment") or {}
        secrets = doc.get("secrets") or {}
        kf = env.get("BILLNET_TOKEN_KEY_FILE", "")
        if "BILLNET_TOKEN_KEY" in env:
            self.fail(rel, "billnet-server: the token key itself in the environment; use a secret file")
        m = re.fullmatch(r"/run/secrets/([\w-]+)", kf)
        if not m or m.group(1) not in (srv.get("secrets") or []) or m.group(1) not in secrets:
            self.fail(rel, "billnet-server: BILLNET_TOKEN_KEY_FILE must name one of its secrets (/run/secrets/NAME)")
        else:
            f = str(secrets[m.group(1)].get("file", ""))
            if self.expand(f) is not None:
                self.fail(rel, f"token key secret file {f!r} has a default; require it (${{VAR:?...}})")
        grace = re.fullmatch(r"(\d+)s", str(srv.get("stop_grace_period", "10s")))
        if not grace or int(grace.group(1)) <= 30:
            self.fail(rel, "billnet-server: stop_grace_period must exceed the 30 s drain timeout")
        if srv.get("stop_signal", "SIGTERM") != "SIGTERM":
            self.fail(rel, "billnet-server: stop_signal must be SIGTERM")
        # Prometheus.
        pm = mounts.get("prometheus", {})
        cfg_path = pm.get("/etc/prometheus/prometheus.yml")
        if not cfg_path:
            self.fail(rel, "prometheus: no /etc/prometheus/prometheus.yml bind mount")
        else:
            cfg = yaml.safe_load(self.read(cfg_path))
            ref = yaml.safe_load(self.read("deploy/prometheus/prometheus.yml"))
            if sorted(cfg.get("rule_files", [])) != sorted(ref.get("rule_files", [])):
                self.fail(cfg_path, "rule_files differ from deploy/prometheus/prometheus.yml")
            for rf in cfg.get("rule_files", []):
                if pm.get("/etc/prometheus/" + rf) != os.path.join("deploy/prometheus", rf):
                    self.fail(rel, f"prometheus: rule file {rf} is not mounted from deploy/prometheus/")
            jobs = [j["job_name"] for j in cfg.get("scrape_configs", [])]
            if jobs != [j["job_name"] for j in ref.get("scrape_configs", [])]:
                self.fail(cfg_path, f"scrape jobs {jobs} differ from deploy/prometheus's (the alerts select the job)")
            targets = [t for j in cfg.get("scrape_configs", []) for sc in j.get("static_configs", [])
                       for t in sc.get("targets", [])]
            if "billnet-server:9464" not in targets:
                self.fail(cfg_path, f"targets {targets} do not include billnet-server:9464")
            self.promtool(cfg_path, pm)
        # Grafana.
        gm = mounts.get("grafana", {})
        ds_path = gm.get("/etc/grafana/provisioning/datasources/billnet.yml")
        if not ds_path:
            self.fail(rel, "grafana: no data source provisioning mount")
        else:
            ds = yaml.safe_load(self.read(ds_path))["datasources"][0]
            ref = yaml.safe_load(self.read("deploy/grafana/provisioning/datasources/billnet.yml"))["datasources"][0]
            if ds.get("uid") != ref.get("uid"):
                self.fail(ds_path, f"data source uid {ds.get('uid')} != {ref.get('uid')} (the dashboard's)")
            listen = [a for a in svcs["prometheus"].get("command", []) if a.startswith("--web.listen-address=")]
            port = listen[0].rsplit(":", 1)[1] if listen else "9090"
            if ds.get("url") != f"http://prometheus:{port}":
                self.fail(ds_path, f"url {ds.get('url')} is not the prometheus service (http://prometheus:{port})")
        prov = gm.get("/etc/grafana/provisioning/dashboards/billnet.yml")
        if prov != "deploy/grafana/provisioning/dashboards/billnet.yml":
            self.fail(rel, "grafana: the project's dashboard provider is not mounted")
        else:
            path = yaml.safe_load(self.read(prov))["providers"][0]["options"]["path"]
            if gm.get(path) != "deploy/grafana/dashboards":
                self.fail(rel, f"grafana: the provider reads {path}; mount deploy/grafana/dashboards there")

    def promtool(self, cfg_path, mounts):
        if not shutil.which("promtool"):
            self.note("promtool not found: compose Prometheus config not checked by promtool")
            return
        with tempfile.TemporaryDirectory() as d:
            for target, src in mounts.items():
                if target.startswith("/etc/prometheus/") and src and self.exists(src):
                    with open(os.path.join(d, os.path.basename(target)), "w") as f:
                        f.write(self.read(src))
            r = subprocess.run(["promtool", "check", "config", os.path.join(d, "prometheus.yml")],
                               capture_output=True, text=True)
            if r.returncode != 0:
                self.fail(cfg_path, "promtool check config failed: " + (r.stdout + r.stderr).strip())

    # ================================ Kubernetes ================================
    def check_k8s(self, kdir):
        kust = yaml.safe_load(self.read(os.path.join(kdir, "kustomization.yaml")))
        files = sorted(f for f in os.listdir(os.path.join(self.root, kdir))
                       if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml")
        if sorted(kust.get("resources", [])) != files:
            self.fail(kdir + "/kustomization.yaml", f"resources {kust.get('resources')} != the manifests {files}")
        ns = kust.get("namespace")
        objs = []
        for f in files:
            rel = os.path.join(kdir, f)
            try:
                docs = [d for d in yaml.safe_load_all(self.read(rel)) if d is not None]
            except yaml.YAMLError as e:
                self.fail(rel, f"does not parse: {e}")
                continue
            for d in docs:
                if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind") \
                        or not (d.get("metadata") or {}).get("name"):
                    self.fail(rel, "a document without apiVersion, kind or metadata.name")
                    continue
                d["_file"] = rel
                objs.append(d)
        api = {"Namespace": "v1", "ConfigMap": "v1", "Service": "v1", "PersistentVolumeClaim": "v1",
               "Secret": "v1", "Deployment": "apps/v1", "HorizontalPodAutoscaler": "autoscaling/v2",
               "PodDisruptionBudget": "policy/v1"}
        by = {}
        for o in objs:
            if api.get(o["kind"]) != o["apiVersion"]:
                self.fail(o["_file"], f"{o['kind']} {o['metadata']['name']}: apiVersion {o['apiVersion']}")
            if o["kind"] == "Secret" and (o.get("data") or o.get("stringData")):
                self.fail(o["_file"], "a Secret with data in the repository (generate it, never commit a key)")
            by.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
        secrets = set(by.get("Secret", {})) | {g["name"] for g in kust.get("secretGenerator", [])}
        configmaps = {n: o.get("data", {}) for n, o in by.get("ConfigMap", {}).items()}
        for g in kust.get("secretGenerator", []):
            for f in g.get("files", []):
                fname = f.split("=", 1)[-1]
                gi = self.read(os.path.join(kdir, ".gitignore")) if self.exists(os.path.join(kdir, ".gitignore")) else ""
                if fname not in gi.split():
                    self.fail(kdir, f"secretGenerator file {fname} is not in {kdir}/.gitignore")
        pvcs = by.get("PersistentVolumeClaim", {})
        deps = by.get("Deployment", {})
        for d in deps.values():
            self.check_pod_refs(d, configmaps, secrets, pvcs)
        srv = deps.get("billnet-server")
        if not srv:
            self.fail(kdir, "no Deployment billnet-server")
            return
        self.check_server(srv, configmaps, secrets, pvcs)
        for s in by.get("Service", {}).values():
            self.check_service(s, deps)
        self.check_hpa_pdb(by, srv)
        self.check_proxy(by, srv, ns)

    @staticmethod
    def selects(selector, labels):
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    def check_pod_refs(self, d, configmaps, secrets, pvcs):
        where = f"{d['_file']} Deployment {d['metadata']['name']}"
        spec = d["spec"]["template"]["spec"]
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        if not self.selects(d["spec"].get("selector", {}).get("matchLabels"), labels):
            self.fail(where, "selector.matchLabels does not match the pod template's labels")
        if not (spec.get("securityContext") or {}).get("runAsNonRoot"):
            self.fail(where, "pod securityContext.runAsNonRoot is not true")
        for v in spec.get("volumes", []):
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                self.fail(where, f"volume {v['name']}: ConfigMap {v['configMap']['name']} is not defined")
            if "secret" in v and v["secret"]["secretName"] not in secrets:
                self.fail(where, f"volume {v['name']}: Secret {v['secret']['secretName']} is not defined")
            if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in pvcs:
                self.fail(where, f"volume {v['name']}: PersistentVolumeClaim "
                                 f"{v['persistentVolumeClaim']['claimName']} is not defined")
        vols = {v["name"] for v in spec.get("volumes", [])}
        for c in spec.get("containers", []):
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols:
                    self.fail(where, f"container {c['name']} mounts undefined volume {m['name']}")
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {})
                if "secretKeyRef" in ref and ref["secretKeyRef"]["name"] not in secrets:
                    self.fail(where, f"env {e['name']}: Secret {ref['secretKeyRef']['name']} not defined")
                if "configMapKeyRef" in ref and ref["configMapKeyRef"]["name"] not in configmaps:
                    self.fail(where, f"env {e['name']}: ConfigMap {ref['configMapKeyRef']['name']} not defined")
            for e in c.get("envFrom", []):
                if "secretRef" in e and e["secretRef"]["name"] not in secrets:
                    self.fail(where, f"envFrom: Secret {e['secretRef']['name']} not defined")
                if "configMapRef" in e and e["configMapRef"]["name"] not in configmaps:
                    self.fail(where, f"envFrom: ConfigMap {e['configMapRef']['name']} not defined")
            res = c.get("resources", {})
            if not (res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory")
                    and res.get("limits", {}).get("memory")):
                self.fail(where, f"container {c['name']}: set requests.cpu, requests.memory and limits.memory")

    @staticmethod
    def mount_for(container, path):
        best = None
        for m in container.get("volumeMounts", []):
            mp = m["mountPath"].rstrip("/")
            if path == mp or path.startswith(mp + "/"):
                if best is None or len(mp) > len(best["mountPath"]):
                    best = m
        return best

    def check_server(self, d, configmaps, secrets, pvcs):
        where = f"{d['_file']} Deployment billnet-server"
        spec = d["spec"]["template"]["spec"]
        c = spec["containers"][0]
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        args = c.get("args", [])
        if "--config" not in args:
            self.fail(where, "args do not pass --config (the ConfigMap's server.json)")
            return
        cfg_path = args[args.index("--config") + 1]
        m = self.mount_for(c, cfg_path)
        vol = vols.get(m["name"]) if m else None
        if not vol or "configMap" not in vol:
            self.fail(where, f"--config {cfg_path} is not on a ConfigMap volume")
            return
        data = configmaps.get(vol["configMap"]["name"], {})
        key = os.path.relpath(cfg_path, m["mountPath"])
        if key not in data:
            self.fail(where, f"ConfigMap {vol['configMap']['name']} has no key {key}")
            return
        try:
            cfg = json.loads(data[key])
        except json.JSONDecodeError as e:
            self.fail(where, f"server.json does not parse: {e}")
            return
        self.print_config(data[key], where)
        grpc_port = int(cfg.get("listen", "127.0.0.1:50051").rsplit(":", 1)[1])
        metrics_port = int(cfg.get("metrics_listen", "127.0.0.1:9464").rsplit(":", 1)[1])
        if not cfg.get("listen", "").startswith("0.0.0.0:"):
            self.fail(where, "config listen must be 0.0.0.0:PORT in a pod")
        if ports.get("grpc") != grpc_port or ports.get("metrics") != metrics_port:
            self.fail(where, f"container ports {ports} != config listen {grpc_port} / metrics {metrics_port}")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            p = c.get(probe)
            if not p or "grpc" not in p:
                self.fail(where, f"{probe} is not a gRPC probe")
            elif p["grpc"].get("port") != grpc_port:
                self.fail(where, f"{probe} probes port {p['grpc'].get('port')}, the server's gRPC port is {grpc_port}")
        drain_s = cfg.get("drain_timeout_ms", 30000) / 1000
        pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pre_s = float(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
        tg = spec.get("terminationGracePeriodSeconds", 30)
        if tg < pre_s + drain_s + GRACE_MARGIN_S:
            self.fail(where, f"terminationGracePeriodSeconds {tg} <= preStop {pre_s} s + drain timeout {drain_s} s")
        # Token key: a file from a Secret volume, never a literal.
        for e in c.get("env", []):
            if e["name"] == "BILLNET_TOKEN_KEY" and "value" in e:
                self.fail(where, "BILLNET_TOKEN_KEY given as a literal value")
        kf = cfg.get("token_key_file") or next((e.get("value") for e in c.get("env", [])
                                                if e["name"] == "BILLNET_TOKEN_KEY_FILE"), None)
        env_secret = any(e["name"] == "BILLNET_TOKEN_KEY" and "secretKeyRef" in e.get("valueFrom", {})
                         for e in c.get("env", []))
        if kf:
            km = self.mount_for(c, kf)
            kv = vols.get(km["name"]) if km else None
            if not kv or "secret" not in kv:
                self.fail(where, f"token key file {kf} is not on a Secret volume")
            else:
                items = {i["path"]: i["key"] for i in kv["secret"].get("items", [])}
                rel = os.path.relpath(kf, km["mountPath"])
                if items and rel not in items:
                    self.fail(where, f"token key file {kf}: the Secret volume has no item {rel}")
        elif not env_secret:
            self.fail(where, "no token key (token_key_file on a Secret volume, or BILLNET_TOKEN_KEY from a Secret)")
        # Models: the PVC, read-only, ReadOnlyMany, at the configured repository.
        repo = cfg.get("model_repository", "")
        mm = self.mount_for(c, repo) if repo else None
        mv = vols.get(mm["name"]) if mm else None
        if not mv or "persistentVolumeClaim" not in mv:
            self.fail(where, f"model_repository {repo!r} is not on a PersistentVolumeClaim volume")
        else:
            if not mm.get("readOnly"):
                self.fail(where, "the model repository mount is not readOnly")
            pvc = pvcs.get(mv["persistentVolumeClaim"]["claimName"])
            if pvc and "ReadOnlyMany" not in pvc["spec"].get("accessModes", []):
                self.fail(pvc["_file"], "the model PVC is not ReadOnlyMany")
        threads = cfg.get("inference_threads", 0)
        cpu = str(c.get("resources", {}).get("requests", {}).get("cpu", ""))
        cpu_cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu or 0)
        if threads < 1 or threads > max(1, round(cpu_cores)):
            self.fail(where, f"inference_threads {threads} should be set and match the CPU request {cpu} "
                             "(the default, the node's cores, ignores the container's share)")

    def print_config(self, text, where):
        exe = os.path.join(self.build or "", "server/billnet-server")
        if not self.build or not os.path.exists(exe):
            self.note("billnet-server not built: server.json not checked by --print-config")
            return
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write(text)
        try:
            r = subprocess.run([exe, "--config", f.name, "--print-config"], capture_output=True, text=True,
                               timeout=30)
            if r.returncode != 0:
                self.fail(where, "billnet-server --config server.json --print-config failed: " +
                          (r.stdout + r.stderr).strip())
        finally:
            os.unlink(f.name)

    def check_service(self, s, deps):
        where = f"{s['_file']} Service {s['metadata']['name']}"
        sel = s["spec"].get("selector")
        targets = [d for d in deps.values() if self.selects(sel, d["spec"]["template"]["metadata"].get("labels", {}))]
        if not targets:
            self.fail(where, f"selector {sel} selects no Deployment's pods")
            return
        c = targets[0]["spec"]["template"]["spec"]["containers"][0]
        cports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for p in s["spec"].get("ports", []):
            t = p.get("targetPort", p["port"])
            if (isinstance(t, str) and t not in cports) or (isinstance(t, int) and t not in cports.values()):
                self.fail(where, f"port {p.get('name')}: targetPort {t} is not a container port of "
                                 f"{targets[0]['metadata']['name']} ({cports})")

    def check_hpa_pdb(self, by, srv):
        labels = srv["spec"]["template"]["metadata"]["labels"]
        hpas = list(by.get("HorizontalPodAutoscaler", {}).values())
        if not hpas:
            self.fail("deploy/k8s", "no HorizontalPodAutoscaler")
        for h in hpas:
            where = f"{h['_file']} HPA {h['metadata']['name']}"
            ref = h["spec"]["scaleTargetRef"]
            if (ref.get("kind"), ref.get("name"), ref.get("apiVersion")) != ("Deployment", "billnet-server", "apps/v1"):
                self.fail(where, f"scaleTargetRef {ref} is not the Deployment billnet-server")
            if not 1 <= h["spec"].get("minReplicas", 1) <= h["spec"]["maxReplicas"]:
                self.fail(where, "minReplicas/maxReplicas out of order")
            if not h["spec"].get("metrics"):
                self.fail(where, "no metrics")
        pdbs = list(by.get("PodDisruptionBudget", {}).values())
        if not pdbs:
            self.fail("deploy/k8s", "no PodDisruptionBudget")
        for p in pdbs:
            if not self.selects(p["spec"].get("selector", {}).get("matchLabels"), labels):
                self.fail(f"{p['_file']} PDB {p['metadata']['name']}", "selector does not select the billnet-server pods")

    def check_proxy(self, by, srv, ns):
        cms = [o for o in by.get("ConfigMap", {}).values() if "haproxy.cfg" in o.get("data", {})]
        if not cms:
            self.fail("deploy/k8s", "no ConfigMap with haproxy.cfg (the L7 gRPC proxy)")
            return
        cm = cms[0]
        where = f"{cm['_file']} ConfigMap {cm['metadata']['name']}"
        cfg = cm["data"]["haproxy.cfg"]
        labels = srv["spec"]["template"]["metadata"]["labels"]
        srv_ports = {p.get("name"): p["containerPort"]
                     for p in srv["spec"]["template"]["spec"]["containers"][0].get("ports", [])}
        ups = re.findall(r"^\s*server(?:-template\s+\S+\s+(\d+)|\s+\S+)\s+([\w.-]+):(\d+)(.*)$", cfg, re.M)
        if not ups:
            self.fail(where, "no server/server-template upstream lines")
        hosts = set()
        for count, host, port, _ in ups:
            hosts.add(host)
            short = host.split(".")[0]
            svc = by.get("Service", {}).get(short)
            if not svc or host not in (short, f"{short}.{ns}", f"{short}.{ns}.svc", f"{short}.{ns}.svc.cluster.local"):
                self.fail(where, f"upstream {host} is not a Service of namespace {ns} in the manifests")
                continue
            if not self.selects(svc["spec"].get("selector"), labels):
                self.fail(where, f"upstream Service {short} does not select the billnet-server pods")
            if svc["spec"].get("clusterIP") != "None":
                self.fail(where, f"upstream Service {short} is not headless: the proxy would see one address")
            sp = {p["port"] for p in svc["spec"].get("ports", [])}
            if int(port) not in sp or int(port) != srv_ports.get("grpc"):
                self.fail(where, f"upstream port {port} is not the Service's gRPC port {sorted(sp)}")
            for h in by.get("HorizontalPodAutoscaler", {}).values():
                if count and int(count) < h["spec"]["maxReplicas"]:
                    self.fail(where, f"server-template has {count} slots < HPA maxReplicas {h['spec']['maxReplicas']}")
        if not re.search(r"^\s*default-server\s.*\bproto h2\b", cfg, re.M) and \
                not all("proto h2" in u[3] for u in ups):
            self.fail(where, "upstreams are not HTTP/2 (proto h2): gRPC needs it")
        if not re.search(r"^\s*balance\s+(leastconn|roundrobin)", cfg, re.M):
            self.fail(where, "no balance leastconn/roundrobin")
        binds = [int(p) for p in re.findall(r"^\s*bind\s+\S*:(\d+)\s+proto h2", cfg, re.M)]
        if not binds:
            self.fail(where, "no `bind :PORT proto h2` frontend for gRPC")
        # The proxy Deployment and Service.
        pd = [d for d in by.get("Deployment", {}).values()
              if any(v.get("configMap", {}).get("name") == cm["metadata"]["name"]
                     for v in d["spec"]["template"]["spec"].get("volumes", []))]
        if not pd:
            self.fail(where, "no Deployment mounts the proxy config")
        else:
            c = pd[0]["spec"]["template"]["spec"]["containers"][0]
            args = c.get("args", []) + c.get("command", [])
            fpath = args[args.index("-f") + 1] if "-f" in args else "/usr/local/etc/haproxy/haproxy.cfg"
            m = self.mount_for(c, fpath)
            if not m or os.path.relpath(fpath, m["mountPath"]) != "haproxy.cfg":
                self.fail(where, f"the proxy reads {fpath}, which is not the ConfigMap's haproxy.cfg")
            cports = {p["containerPort"] for p in c.get("ports", [])}
            if binds and binds[0] not in cports:
                self.fail(where, f"gRPC bind port {binds[0]} is not a container port of the proxy")
            plabels = pd[0]["spec"]["template"]["metadata"]["labels"]
            if not any(self.selects(s["spec"].get("selector"), plabels) for s in by.get("Service", {}).values()):
                self.fail(where, "no Service selects the proxy pods")
        if shutil.which("haproxy"):
            text = cfg
            for h in hosts:
                text = text.replace(h, "127.0.0.1")
            with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
                f.write(text)
            try:
                r = subprocess.run(["haproxy", "-c", "-f", f.name], capture_output=True, text=True, timeout=30)
                if r.returncode != 0:
                    self.fail(where, "haproxy -c failed: " + (r.stdout + r.stderr).strip())
                elif "[WARNING]" in r.stdout + r.stderr:
                    self.fail(where, "haproxy -c warns: " + (r.stdout + r.stderr).strip())
            finally:
                os.unlink(f.name)
        else:
            self.note("haproxy not installed: proxy config not validated by haproxy -c")

    def run_all(self):
        docker = sorted(f for f in os.listdir(os.path.join(self.root, "docker")) if f.endswith(".Dockerfile"))
        for name in ("server.Dockerfile", "trainer.Dockerfile"):
            if name not in docker:
                self.fail("docker", f"no {name}")
        for f in docker:
            self.check_dockerfile(os.path.join("docker", f))
        self.check_compose("docker/compose.yaml")
        self.check_k8s("deploy/k8s")
        return self.failures


# Breaks made on purpose: (file, text, replacement, a phrase the failure must contain).
MUTATIONS = [
    ("docker/server.Dockerfile", "USER 10001:10001", "USER root", "runs as root"),
    ("docker/trainer.Dockerfile", "USER 10001:10001\n", "", "sets no USER"),
    ("docker/server.Dockerfile", "COPY scripts/setup", "COPY scripts/setupx", "does not exist"),
    ("docker/server.Dockerfile", "HEALTHCHECK --interval", "HEALTHCHEK --interval", "unknown instruction"),
    ("docker/server.Dockerfile", "--target billnet-server", "--target billnet-serverx", "no add_executable"),
    ("docker/server.Dockerfile", "/out/bin/ /usr/local/bin/", "/opt/bin/ /usr/local/bin/", "never creates"),
    ("docker/server.Dockerfile", "libspdlog1.10 ", "", "does not install"),
    ("docker/server.Dockerfile.dockerignore", "!server\n", "", "excluded by"),
    ("docker/compose.yaml", "../deploy/prometheus/billnet-alerts.yml", "../deploy/prometheus/alerts.yml",
     "does not exist"),
    ("docker/compose.yaml", "BILLNET_TOKEN_KEY_FILE:?set", "BILLNET_TOKEN_KEY_FILE:-/tmp/key", "has a default"),
    ("deploy/k8s/server-deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 30",
     "terminationGracePeriodSeconds"),
    ("deploy/k8s/server-deployment.yaml", "              port: 50051\n              service: billnet",
     "              port: 50052\n              service: billnet", "readinessProbe probes port"),
    ("deploy/k8s/server-deployment.yaml", "claimName: billnet-models", "claimName: billnet-model",
     "PersistentVolumeClaim billnet-model is not defined"),
    ("deploy/k8s/server-deployment.yaml", "secretName: billnet-token-key", "secretName: billnet-token",
     "Secret billnet-token is not defined"),
    ("deploy/k8s/server-deployment.yaml", "          resources:\n            requests:\n              cpu: \"2\"\n",
     "          resources:\n            requests:\n", "requests.cpu"),
    ("deploy/k8s/server-service.yaml", "targetPort: grpc", "targetPort: grpcx", "not a container port"),
    ("deploy/k8s/server-hpa.yaml", "    name: billnet-server\n  minReplicas", "    name: billnet\n  minReplicas",
     "scaleTargetRef"),
    ("deploy/k8s/server-pdb.yaml", "      app.kubernetes.io/name: billnet-server", "      app.kubernetes.io/name: billnet",
     "does not select"),
    ("deploy/k8s/proxy.yaml", "billnet-server-headless.billnet.svc", "billnet-server.billnet.svc",
     "not a Service"),
    ("deploy/k8s/proxy.yaml", "balance leastconn", "balance leastconns", "haproxy -c failed"),
    ("deploy/k8s/server-config.yaml", "\"drain_timeout_ms\": 30000", "\"drain_timeout_ms\": 60000",
     "terminationGracePeriodSeconds"),
    ("deploy/k8s/server-config.yaml", "\"max_streams\": 224", "\"max_streams\": \"224\"", "--print-config failed"),
]


def self_test(root, build):
    """Each break must be reported; returns the breaks that were not."""
    missed = []
    for rel, old, new, phrase in MUTATIONS:
        text = open(os.path.join(root, rel), encoding="utf-8").read()
        if old not in text:
            missed.append(f"{rel}: the self-test's text {old!r} is gone; update MUTATIONS")
            continue
        if phrase == "haproxy -c failed" and not shutil.which("haproxy"):
            continue
        if phrase == "--print-config failed" and not (build and os.path.exists(os.path.join(build, "server/billnet-server"))):
            continue
        lint = Lint(root, build, {rel: text.replace(old, new, 1)}, quiet=True)
        failures = lint.run_all()
        if not any(phrase in f for f in failures):
            missed.append(f"{rel}: replacing {old!r} by {new!r} was not reported (expected {phrase!r}; got {failures})")
        else:
            print(f"self-test: {rel}: {old.strip()[:40]!r} -> {new.strip()[:40]!r}: reported")
    return missed


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--build", default=None, help="build folder (DT_NEEDED and --print-config checks)")
    ap.add_argument("--no-self-test", action="store_true")
    a = ap.parse_args()
    build = a.build or os.path.join(a.source, "build")
    if not os.path.isdir(build):
        build = None
    failures = Lint(a.source, build).run_all()
    for f in failures:
        print("FAIL " + f)
    missed = [] if a.no_self_test or failures else self_test(a.source, build)
    for m in missed:
        print("FAIL self-test: " + m)
    if failures or missed:
        print(f"{len(failures) + len(missed)} failure(s)")
        return 1
    print("deploy lint: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
