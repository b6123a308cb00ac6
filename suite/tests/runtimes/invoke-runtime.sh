#!/bin/sh
# The control runtime: attaches one container to $CNI_CONFORMANCE_NETWORK and detaches it again
# with `cni-conformance invoke`, the suite's libcni-like runner. It must pass runtime mode.
#   cni-conformance runtime -- sh suite/tests/runtimes/invoke-runtime.sh
# Runs inside the suite's lab (private network and mount namespaces, private /run and /var/lib/cni).
set -u
suite=${CNI_CONFORMANCE_SUITE:?run me under cni-conformance runtime}
conf=$(ls "$CNI_CONFORMANCE_CONF_DIR"/*.conflist | head -n 1)
ns=ctl$$
cid=control-$$
# The Kubernetes arguments kubelet's CNI code passed (no CRI record: the kubernetes/* rules skip).
k8s="IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=demo;K8S_POD_INFRA_CONTAINER_ID=$cid"
caps='{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"mac":"c2:11:22:33:44:55","ips":["10.222.0.2/24"],"bandwidth":{"ingressRate":1000000,"ingressBurst":100000,"egressRate":1000000,"egressBurst":100000},"aliases":["conformance"]}'

inv() {
  verb=$1; shift
  "$suite" invoke "$verb" --config "$conf" --cni-path "$CNI_CONFORMANCE_BIN_DIR" "$@"
}
att="--container-id $cid --netns /run/netns/$ns --ifname eth0"

ip netns add "$ns" || exit 2
status=0
if inv add $att --capability-args "$caps" --args "$k8s" >/dev/null; then
  inv status >/dev/null || status=1
  # CHECK is refused below 0.4.0 and a no-op with disableCheck: the runner decides.
  inv check $att --capability-args "$caps" --args "$k8s" >/dev/null 2>&1
  # GC errors (a scenario has a plugin that fails GC) are reported, not fatal to the container.
  inv gc --valid-attachments "[{\"containerID\":\"$cid\",\"ifname\":\"eth0\"}]" >/dev/null 2>&1
else
  status=1
fi
# DEL always, even after a failed ADD.
inv del $att --capability-args "$caps" --args "$k8s" >/dev/null || status=1
ip netns del "$ns"
exit $status
