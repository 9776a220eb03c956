#!/usr/bin/env python3
"""Break a `condis bench --concurrency 1` call setup down across two nodes.

Input: the execution traces of the calling node (alpha) and the called node
(beta), taken with CONDIS_NODE_PROFILE=DIR, dumped as text:

    go tool trace -d=parsed DIR/alpha.trace > alpha.txt
    go tool trace -d=parsed DIR/beta.trace  > beta.txt
    bench/sigtrace.py alpha.txt beta.txt

It follows each call from node's "bench call" mark to its "bench connected"
mark through transport/quic's signalling marks (transport/quic/tracemark.go),
and splits each crossing of the network (SETUP out, CONNECT back) into: the
sender's quic-go goroutines (run loop, send queue) up to the sendmsg system
call; the kernel delivering the packet and waking the peer's quic-go read
loop; and the peer's quic-go goroutines (read loop, run loop, our signalling
reader) up to the message being read. Both traces use CLOCK_MONOTONIC, so
times from the two processes compare. Prints p50 and mean of each step; the
means add up to the mean setup.
"""
import bisect, collections, re, statistics, sys

LOG = re.compile(r'G=(-?\d+) Log Time=(\d+) .*Category="([^"]*)" Message="([^"]*)"')
TRANS = re.compile(r'G=(-?\d+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+)')


def load(fn):
    off, logs, trans = 0, [], []
    for line in open(fn):
        if ' Sync ' in line and 'Mono=' in line:
            m = re.search(r'Trace=(\d+) Mono=(\d+)', line)
            off = int(m.group(2)) - int(m.group(1))
            continue
        m = LOG.search(line)
        if m:
            logs.append((int(m.group(2)) + off, int(m.group(1)), m.group(3), m.group(4)))
            continue
        m = TRANS.search(line)
        if m:
            trans.append((int(m.group(2)) + off, m.group(3), m.group(4), m.group(5)))
    logs.sort()
    trans.sort()
    return logs, trans


def first(trans, t, pred, limit=5000):
    i = bisect.bisect_left(trans, (t,))
    for e in trans[i:i + limit]:
        if pred(e):
            return e
    return None


def main(a_fn, b_fn):
    nodes = {'alpha': load(a_fn), 'beta': load(b_fn)}
    # One timeline of marks from both nodes.
    marks = sorted((t, n, c, k) for n, (logs, _) in nodes.items() for t, _, c, k in logs)
    steps = collections.defaultdict(list)
    order = []

    def add(name, d):
        if name not in steps:
            order.append(name)
        steps[name].append(d / 1000)

    # Crossings: each SETUP (05) and CONNECT (07) written on one node and read on the other.
    written = [(t, n, k) for t, n, c, k in marks if c == 'sig written' and k[-2:] in ('05', '07')]
    read = {(n, k): t for t, n, c, k in marks if c == 'sig read'}
    crossings = {}
    senders = {n: collections.Counter() for n in nodes}
    for t, n, k in written:
        e = first(nodes[n][1], t, lambda e: e[2] == 'Running' and e[3] == 'Syscall')
        if e:
            senders[n][e[1]] += 1
    sender = {n: c.most_common(1)[0][0] for n, c in senders.items() if c}
    loops = {n: collections.Counter() for n in nodes}
    for t, n, k in written:
        peer = 'beta' if n == 'alpha' else 'alpha'
        s = first(nodes[n][1], t, lambda e: e[1] == sender.get(n) and e[3] == 'Syscall')
        if s:
            w = first(nodes[peer][1], s[0], lambda e: e[2] == 'Waiting' and e[3] == 'Runnable')
            if w:
                loops[peer][w[1]] += 1
    readloop = {n: c.most_common(1)[0][0] for n, c in loops.items() if c}
    for t, n, k in written:
        peer = 'beta' if n == 'alpha' else 'alpha'
        tr = read.get((peer, k))
        s = first(nodes[n][1], t, lambda e: e[1] == sender.get(n) and e[3] == 'Syscall')
        if tr is None or s is None:
            continue
        w = first(nodes[peer][1], s[0], lambda e: e[1] == readloop.get(peer) and e[3] == 'Runnable')
        if w is None or not (t <= s[0] <= w[0] <= tr):
            continue
        crossings[(n, k)] = (s[0] - t, w[0] - s[0], tr - w[0])

    setups = []
    i = 0
    while i < len(marks):
        t0, n0, c0, _ = marks[i]
        if not (n0 == 'alpha' and c0 == 'bench call'):
            i += 1
            continue
        j = i + 1
        while j < len(marks) and not (marks[j][1] == 'alpha' and marks[j][2] in ('bench call', 'bench connected')):
            j += 1
        if j == len(marks) or marks[j][2] != 'bench connected':
            i = j
            continue
        call = [m for m in marks[i:j + 1] if not m[2].startswith('sig') or m[3][-2:] in ('05', '07')]
        names = [(m[1], m[2], m[3][-2:]) for m in call]
        want = [('alpha', 'bench call', ''), ('alpha', 'sig send', '05'), ('alpha', 'sig written', '05'),
                ('beta', 'sig read', '05'), ('beta', 'sig send', '07'), ('beta', 'sig written', '07'),
                ('beta', 'sig handled', '05'), ('alpha', 'sig read', '07'), ('alpha', 'bench connected', '')]
        if [(a, b, c if b.startswith('sig') else '') for a, b, c in names] != want:
            i = j + 1
            continue
        T = {(m[1], m[2], m[3][-2:] if m[2].startswith('sig') else ''): m[0] for m in call}
        k5, k7 = call[1][3], call[4][3]
        c5, c7 = crossings.get(('alpha', k5)), crossings.get(('beta', k7))
        if not c5 or not c7:
            i = j + 1
            continue
        setups.append((T[want[-1]] - t0) / 1000)
        add('alpha: bench call -> SETUP to the stream (mediator, mcm, encode)', T[want[1]] - t0 + T[want[2]] - T[want[1]])
        add('SETUP alpha->beta: quic-go send goroutines (run loop, send queue) to sendmsg', c5[0])
        add('SETUP alpha->beta: kernel delivery, beta read loop woken', c5[1])
        add('SETUP alpha->beta: beta read loop, run loop, signalling reader', c5[2])
        add('beta: SETUP read -> CONNECT to the stream (decode, mcm, mediator, accept, encode)', T[want[5]] - T[want[3]])
        add('CONNECT beta->alpha: quic-go send goroutines to sendmsg', c7[0])
        add('CONNECT beta->alpha: kernel delivery, alpha read loop woken', c7[1])
        add('CONNECT beta->alpha: alpha read loop, run loop, signalling reader', c7[2])
        add('alpha: CONNECT read -> MakeCallComplete (decode, mcm, mediator)', T[want[8]] - T[want[7]])
        i = j + 1
    if not setups:
        sys.exit('no complete call found: were both traces taken during a --concurrency 1 bench?')
    print(f'{len(setups)} calls; setup p50 {statistics.median(setups):.1f} µs, mean {statistics.mean(setups):.1f} µs')
    print(f'{"p50":>7} {"mean":>7}  step (µs)')
    for name in order:
        v = steps[name]
        print(f'{statistics.median(v):7.1f} {statistics.mean(v):7.1f}  {name}')
    print(f'{"":7} {sum(statistics.mean(steps[n]) for n in order):7.1f}  sum of the means')


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: sigtrace.py alpha.txt beta.txt  (go tool trace -d=parsed dumps)')
    main(sys.argv[1], sys.argv[2])
