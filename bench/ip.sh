#!/usr/bin/env bash
# IP over condis benchmark (issue 11 item 5): in two network namespaces
# joined by a veth pair, in one run, iperf3 TCP throughput and ping RTT
#   - over condis0 (two `condis node`s with [ip], QUIC on the veth),
#   - over wireguard-go (built from the module proxy, configured with wg),
#   - over the veth itself (plain TCP, plain UDP),
# then the ratios against wireguard-go. Bar: condis TCP >= 0.5x
# wireguard-go, ping RTT <= 1.5x. Needs root, /dev/net/tun, iproute2,
# iputils-ping, iperf3, wireguard-tools, python3 and Go. Addresses are from
# 198.18.0.0/15 only; everything is removed on exit.
#
#   sudo bench/ip.sh            # 10 s per iperf3 run
#   SECONDS_PER_RUN=3 bench/ip.sh
#   CONDIS_BIN=/tmp/condis-old bench/ip.sh   # measure that condis binary
#   CONDIS_MTU=1200 bench/ip.sh   # condis0's MTU fixed, not following the VCs
#
# Without CONDIS_MTU, condis0's MTU is the VC's MaxSduSize, which is what
# the QUIC link's path MTU discovery had reached when the call was set up
# (1239 to about 1411 octets here): compare builds with a fixed MTU.
set -euo pipefail
cd "$(dirname "$0")/.."

T=${SECONDS_PER_RUN:-10}
PINGS=${PINGS:-50}
if [ "$(id -u)" -ne 0 ]; then echo "bench/ip.sh: run as root (network namespaces, TUN interfaces)" >&2; exit 1; fi
for tool in ip ping iperf3 wg python3 go; do
  command -v $tool >/dev/null || { echo "bench/ip.sh: $tool is missing (apt-get install iproute2 iputils-ping iperf3 wireguard-tools python3)" >&2; exit 1; }
done

W=$(mktemp -d)
A=condis-bench-a-$$
B=condis-bench-b-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del $A 2>/dev/null || true
  ip netns del $B 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

echo "building condis and wireguard-go ..."
if [ -n "${CONDIS_BIN:-}" ]; then
  cp "$CONDIS_BIN" "$W/condis" # a build to compare, e.g. of another commit
else
  go build -o "$W/condis" ./cmd/condis
fi
go build -o "$W/wireguard-go" golang.zx2c4.com/wireguard

ip netns add $A
ip netns add $B
ip link add bveth-a netns $A type veth peer name bveth-b netns $B
ip -n $A addr add 198.19.0.1/30 dev bveth-a
ip -n $B addr add 198.19.0.2/30 dev bveth-b
for ns in $A $B; do ip -n $ns link set lo up; done
ip -n $A link set bveth-a up
ip -n $B link set bveth-b up

# condis: two nodes, each with condis0.
"$W/condis" cert init --dir "$W/pki" >/dev/null
"$W/condis" cert issue --dir "$W/pki" alpha >/dev/null
"$W/condis" cert issue --dir "$W/pki" beta >/dev/null
conf() { # name addr peer peeraddr ipaddr routeprefix
  cat >"$W/$1.toml" <<EOF
name = "$1"
listen = "$2:4800"
control = "$W/$1.sock"
ca = "pki/ca.pem"
cert = "pki/$1.pem"
key = "pki/$1.key"

[[peer]]
name = "$3"
address = "$4:4800"

[ip]
address = "$5"
${CONDIS_MTU:+mtu = $CONDIS_MTU}

[[ip.route]]
prefixes = ["$6"]
node = "$3"
EOF
}
conf alpha 198.19.0.1 beta 198.19.0.2 198.18.0.1/24 198.18.0.2/32
conf beta 198.19.0.2 alpha 198.19.0.1 198.18.0.2/24 198.18.0.1/32
ip netns exec $A "$W/condis" node --config "$W/alpha.toml" --log-level warn & PIDS+=($!); NODE_A=$!
ip netns exec $B "$W/condis" node --config "$W/beta.toml" --log-level warn & PIDS+=($!); NODE_B=$!
for i in $(seq 100); do
  ip -n $A link show condis0 >/dev/null 2>&1 && ip -n $B link show condis0 >/dev/null 2>&1 && break
  sleep 0.1
done

# wireguard-go: wg0 on 198.18.1.0/24, UDP on the veth.
# (Each its own name: wireguard-go's control socket, /var/run/wireguard/NAME.sock,
# is in the file system, which the namespaces share.)
WA=wgc$$a
WB=wgc$$b
ip netns exec $A env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 "$W/wireguard-go" -f $WA >/dev/null 2>&1 & PIDS+=($!); WG_A=$!
ip netns exec $B env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 "$W/wireguard-go" -f $WB >/dev/null 2>&1 & PIDS+=($!); WG_B=$!
for i in $(seq 100); do
  ip -n $A link show $WA >/dev/null 2>&1 && ip -n $B link show $WB >/dev/null 2>&1 && break
  sleep 0.1
done
(umask 077; wg genkey >"$W/a.key"; wg genkey >"$W/b.key")
wg pubkey <"$W/a.key" >"$W/a.pub"
wg pubkey <"$W/b.key" >"$W/b.pub"
ip netns exec $A wg set $WA private-key "$W/a.key" listen-port 51820 peer "$(cat "$W/b.pub")" allowed-ips 198.18.1.2/32 endpoint 198.19.0.2:51820
ip netns exec $B wg set $WB private-key "$W/b.key" listen-port 51820 peer "$(cat "$W/a.pub")" allowed-ips 198.18.1.1/32 endpoint 198.19.0.1:51820
ip -n $A addr add 198.18.1.1/24 dev $WA
ip -n $B addr add 198.18.1.2/24 dev $WB
ip -n $A link set $WA up
ip -n $B link set $WB up

# iperf3 servers in beta's namespace, one per address.
for addr in 198.18.0.2 198.18.1.2 198.19.0.2; do
  ip netns exec $B iperf3 -s -B $addr >/dev/null 2>&1 & PIDS+=($!)
done
sleep 0.5

# Warm up: the first packets set up condis's VC and wireguard's handshake.
ip netns exec $A ping -n -c 3 -i 0.2 198.18.0.2 >/dev/null || true
ip netns exec $A ping -n -c 3 -i 0.2 198.18.1.2 >/dev/null || true

tcp() { # address -> Mbit/s received; the sender's retransmissions go to $W/retrans.ADDRESS
  ip netns exec $A iperf3 -c "$1" -t "$T" -J | python3 -c '
import json,sys
e = json.load(sys.stdin)["end"]
open(sys.argv[1], "w").write(str(e["sum_sent"].get("retransmits", 0)))
print("%.0f" % (e["sum_received"]["bits_per_second"]/1e6))' "$W/retrans.$1"
}
udp() { # address -> Mbit/s received, unlimited send rate
  ip netns exec $A iperf3 -c "$1" -u -b 0 -l 1400 -t "$T" -J | python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]; s=e.get("sum_received") or e["sum"]; print("%.0f" % (s["bits_per_second"]/1e6))'
}
rtt() { # address -> average RTT in ms
  ip netns exec $A ping -n -q -c "$PINGS" -i 0.05 "$1" | python3 -c 'import sys,re; m=re.search(r"= [\d.]+/([\d.]+)/", sys.stdin.read()); print(m.group(1))'
}

cpu_ticks() { # pids -> their user+system CPU time, in clock ticks
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo $t
}

echo "measuring (${T}s per iperf3 run, $PINGS pings each) ..."
# The nodes' CPU time over the condis TCP run (both nodes: the sender's and
# the receiver's work) is a figure that a busy machine disturbs less than
# the throughput: CPU per Gbit carried.
C_CPU0=$(cpu_ticks $NODE_A $NODE_B)
C_TCP=$(tcp 198.18.0.2)
C_CPU=$(( $(cpu_ticks $NODE_A $NODE_B) - C_CPU0 ))
C_RTT=$(rtt 198.18.0.2)
W_CPU0=$(cpu_ticks $WG_A $WG_B)
W_TCP=$(tcp 198.18.1.2)
W_CPU=$(( $(cpu_ticks $WG_A $WG_B) - W_CPU0 ))
W_RTT=$(rtt 198.18.1.2)
V_TCP=$(tcp 198.19.0.2); V_UDP=$(udp 198.19.0.2); V_RTT=$(rtt 198.19.0.2)
MTU_C=$(ip -n $A -o link show condis0 | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
MTU_W=$(ip -n $A -o link show $WA | sed -n 's/.* mtu \([0-9]*\).*/\1/p')

python3 - "$C_TCP" "$C_RTT" "$W_TCP" "$W_RTT" "$V_TCP" "$V_UDP" "$V_RTT" "$MTU_C" "$MTU_W" "$C_CPU" "$(getconf CLK_TCK)" "$T" "$W_CPU" "$(cat "$W/retrans.198.18.0.2")" "$(cat "$W/retrans.198.18.1.2")" <<'EOF'
import sys
c_tcp, c_rtt, w_tcp, w_rtt, v_tcp, v_udp, v_rtt = map(float, sys.argv[1:8])
mtu_c, mtu_w = sys.argv[8], sys.argv[9]
c_cpu, hz, secs, w_cpu = float(sys.argv[10]), float(sys.argv[11]), float(sys.argv[12]), float(sys.argv[13])
c_re, w_re = sys.argv[14], sys.argv[15]
print()
print("%-28s %14s %12s" % ("path", "TCP Mbit/s", "ping ms"))
print("%-28s %14.0f %12.3f" % ("condis0 (mtu %s)" % mtu_c, c_tcp, c_rtt))
print("%-28s %14.0f %12.3f" % ("wireguard-go (mtu %s)" % mtu_w, w_tcp, w_rtt))
print("%-28s %14.0f %12.3f" % ("veth, plain TCP", v_tcp, v_rtt))
print("%-28s %14.0f %12s" % ("veth, plain UDP (iperf3 -u)", v_udp, "-"))
print()
tr, rr = c_tcp / w_tcp, c_rtt / w_rtt
print("condis / wireguard-go: TCP %.2fx (bar >= 0.5x: %s), ping RTT %.2fx (bar <= 1.5x: %s)" %
      (tr, "met" if tr >= 0.5 else "NOT met", rr, "met" if rr <= 1.5 else "NOT met"))
print("condis / veth TCP: %.2fx; condis / veth UDP: %.2fx" % (c_tcp / v_tcp, c_tcp / v_udp))
print("TCP retransmissions: condis %s, wireguard-go %s" % (c_re, w_re))
cpg = lambda cpu, mbps: (cpu / hz) / (mbps * secs / 1000)
print("CPU over the TCP run (both ends): condis nodes %.2f s, %.2f CPU-s per Gbit; wireguard-go %.2f s, %.2f CPU-s per Gbit" %
      (c_cpu / hz, cpg(c_cpu, c_tcp), w_cpu / hz, cpg(w_cpu, w_tcp)))
EOF
