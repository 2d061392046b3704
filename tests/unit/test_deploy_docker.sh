#!/usr/bin/env bash
# test_deploy_docker.sh - the container files, checked without a container
# engine (none runs here): what `docker build` would send per .dockerignore
# (no .state/, no build trees, no .git; everything the image build needs),
# and that every file a deploy/compose.yaml command line names exists in
# its container (a configs/volumes target of that service, or a file the
# Dockerfile installs). Needs python3 with PyYAML; skips (77) without.
set -euo pipefail
root=${SRL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
if ! command -v python3 >/dev/null || ! python3 -c 'import yaml' 2>/dev/null; then
    echo "SKIP: python3 with PyYAML is needed"
    exit 77
fi
exec python3 - "$root" <<'PY'
import os, re, sys, yaml
root = sys.argv[1]
fail = []

# ---- the build context: Docker's rules for the patterns we use (paths
# from the context root; * does not cross '/', ** does; a pattern that
# matches a directory excludes everything under it).
def rx(pat):
    out = ''
    i = 0
    while i < len(pat):
        if pat.startswith('**/', i):
            out += '(?:.*/)?'; i += 3
        elif pat.startswith('**', i):
            out += '.*'; i += 2
        elif pat[i] == '*':
            out += '[^/]*'; i += 1
        elif pat[i] == '?':
            out += '[^/]'; i += 1
        else:
            out += re.escape(pat[i]); i += 1
    return re.compile(out + '$')
pats = []
with open(os.path.join(root, '.dockerignore')) as f:
    for line in f:
        line = line.strip()
        if line and not line.startswith('#'):
            neg = line.startswith('!')
            pats.append((neg, rx(line.lstrip('!').strip('/'))))
def ignored(rel):
    parts = rel.split('/')
    verdict = False
    for neg, r in pats:
        if any(r.match('/'.join(parts[:n])) for n in range(1, len(parts) + 1)):
            verdict = not neg
    return verdict
sent, size = [], 0
for d, dirs, files in os.walk(root):
    reld = os.path.relpath(d, root)
    reld = '' if reld == '.' else reld + '/'
    dirs[:] = [x for x in dirs if not ignored(reld + x)]
    for x in files:
        rel = reld + x
        if not ignored(rel):
            sent.append(rel)
            size += os.lstat(os.path.join(root, rel)).st_size
print(f"build context: {len(sent)} files, {size / 1e6:.1f} MB")
for bad in ('.state/', 'build/', 'build-asan/', '.git/'):
    if any(p.startswith(bad) for p in sent):
        fail.append(f"the build context holds {bad}")
if size > 50e6:
    fail.append(f"the build context is {size / 1e6:.0f} MB")
# What the image build reads: the CMake tree, the sources, the tests it
# runs, the docs and examples it copies.
for need in ('CMakeLists.txt', 'common/store.c', 'schemas/sql/001_init.sql',
             'tests/CMakeLists.txt', 'tests/data/store/store_v4.sql', 'tools/gen-config.c',
             'docs/store.md', 'deploy/examples/hub.conf', 'deploy/Dockerfile'):
    if need not in sent:
        fail.append(f"the build context lacks {need}")
dockerfile = open(os.path.join(root, 'deploy/Dockerfile')).read()
for m in re.finditer(r'^COPY\s+(?!--from)(\S+)', dockerfile, re.M):
    src = m.group(1).rstrip('/')
    if src != '.' and not any(p == src or p.startswith(src + '/') for p in sent):
        fail.append(f"deploy/Dockerfile: COPY {src}: not in the build context")

# ---- compose: files named on command lines exist in the container.
image_files = set()
for m in re.finditer(r'^COPY\s+(?:--from=\S+\s+)?\S+\s+(\S+)', dockerfile, re.M):
    image_files.add(m.group(1).rstrip('/'))
compose_text = open(os.path.join(root, 'deploy/compose.yaml')).read()
compose = yaml.safe_load(compose_text)
programs = {'sysrepl', 'sysrepl-producer', 'sysrepl-consumer', 'sysrepl-bridge'}
def provided(svc):
    out = set()
    for c in svc.get('configs') or []:
        out.add(c['target'] if isinstance(c, dict) else '/' + c)
    for v in svc.get('volumes') or []:
        out.add(v.split(':')[1] if isinstance(v, str) else v['target'])
    return out
def exists_in(path, svc):
    return any(path == p or path.startswith(p + '/') for p in provided(svc) | image_files)
def check_args(name, svc, args, where):
    if args and args[0] not in programs and not args[0].startswith('/'):
        return
    if args and args[0] in programs and '/usr/bin' not in image_files:
        fail.append(f"{where}: {args[0]} is not installed in /usr/bin")
    for a in args:
        for path in re.findall(r'(/(?:etc|usr|var|opt)/\S+)', a):
            if not exists_in(path, svc):
                fail.append(f"{where}: {path} does not exist in the container")
for name, svc in compose['services'].items():
    if svc.get('image', '').startswith('sysrepl') or 'build' in svc:
        check_args(name, svc, svc.get('command') or [], f"compose service {name}")
# Files named in the config files the services mount, by the program
# that reads them (one file serves all programs of an instance; only the
# bridge opens its keys file and certificate).
configs = compose.get('configs') or {}
bridge_only = ('bridge.keys_file', 'bridge.tls_cert', 'bridge.tls_key')
for name, svc in compose['services'].items():
    prog = (svc.get('command') or [''])[0]
    for c in svc.get('configs') or []:
        content = configs.get(c['source'], {}).get('content', '')
        for key, path in re.findall(r'^\s*(\S+)\s*=\s*"?(/(?:etc|usr|var|opt)/[^\s"]+)',
                                    content, re.M):
            if key in bridge_only and prog != 'sysrepl-bridge':
                continue
            if not exists_in(path, svc):
                fail.append(f"compose service {name}: config {c['source']} names {path},"
                            " which does not exist in the container")
# The usage examples in the header: docker compose ... exec SERVICE CMD...
for m in re.finditer(r'^#\s+docker compose .*? exec (\S+) (.*)$', compose_text, re.M):
    svc = compose['services'].get(m.group(1))
    if svc is None:
        fail.append(f"compose header: no service {m.group(1)}")
    else:
        check_args(m.group(1), svc, m.group(2).split(), f"compose header (exec {m.group(1)})")
for f in fail:
    print("FAIL:", f)
sys.exit(1 if fail else 0)
PY
