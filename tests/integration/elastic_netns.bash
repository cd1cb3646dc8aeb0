# Hosts as network namespaces, for the multi-node tests of kiln launch (sourced after
# elastic_common.bash). netns_setup N makes N hosts: namespaces joined by veth pairs to a bridge
# in the root namespace, the bridge holding 198.18.X.1/24, host i at 198.18.X.(10+i), and a
# namespace for the coordinator at 198.18.X.10 (X: a /24 of 198.18.0.0/15 that no other test
# holds, so tests can run side by side). $work/agent is mpirun's rsh agent: `agent HOST CMD...`
# runs CMD in HOST's namespace, and fails as ssh does when HOST's link is down. host_down /
# host_up cut and restore a host's link. Everything is removed on exit.

netns_setup() {
  local n="$1" i
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: network namespaces need root"; exit 77; }
  command -v ip > /dev/null || { echo "SKIP: no ip (iproute2)"; exit 77; }
  tag="k$$"
  if ! ip netns add "$tag-probe" 2> /dev/null; then
    echo "SKIP: cannot create network namespaces here"
    exit 77
  fi
  ip netns del "$tag-probe"
  extra_cleanup+=("netns_teardown")

  # A free /24: the lock keeps two tests from taking the same one.
  exec {lock}> /tmp/kiln-netns.lock
  flock "$lock"
  local x
  for x in $(seq 1 254); do
    ip -4 -o addr show | grep -q " 198\.18\.$x\." || break
  done
  net="198.18.$x"
  ip link add "${tag}br" type bridge
  ip addr add "$net.1/24" dev "${tag}br"
  ip link set "${tag}br" up
  flock -u "$lock"

  : > "$work/hosts.map"
  for i in $(seq 0 "$n"); do  # 0: the coordinator's namespace
    ip netns add "$tag-$i"
    ip link add "${tag}v$i" type veth peer name "${tag}n$i"
    ip link set "${tag}n$i" netns "$tag-$i"
    ip link set "${tag}v$i" master "${tag}br" up
    ip -n "$tag-$i" addr add "$net.$((10 + i))/24" dev "${tag}n$i"
    ip -n "$tag-$i" link set "${tag}n$i" up
    ip -n "$tag-$i" link set lo up
    echo "$net.$((10 + i)) $tag-$i ${tag}v$i" >> "$work/hosts.map"
  done

  cat > "$work/agent" <<AGENT
#!/bin/sh
# rsh agent of the namespace hosts: agent HOST COMMAND...
host="\$1"; shift
line=\$(grep "^\$host " "$work/hosts.map") || { echo "ssh: Could not resolve hostname \$host" >&2; exit 255; }
set -- "\$@"
ns=\$(echo "\$line" | cut -d' ' -f2); link=\$(echo "\$line" | cut -d' ' -f3)
if ! ip -o link show "\$link" | grep -q "[<,]UP[,>]"; then
  echo "ssh: connect to host \$host port 22: No route to host" >&2
  exit 255
fi
exec ip netns exec "\$ns" sh -c "\$*"
AGENT
  chmod +x "$work/agent"
  mpirun_net=(--mca btl tcp,self --mca btl_tcp_if_include "$net.0/24"
              --mca oob_tcp_if_include "$net.0/24")
}

host_down() { ip link set "${tag}v$1" down; }
host_up() { ip link set "${tag}v$1" up; }

netns_teardown() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^$tag-" || true); do
    ip netns pids "$ns" 2> /dev/null | xargs -r kill -KILL 2> /dev/null || true
    ip netns del "$ns" 2> /dev/null || true
  done
  ip link del "${tag}br" 2> /dev/null || true
  local l
  for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^${tag}v" || true); do
    ip link del "$l" 2> /dev/null || true
  done
}
