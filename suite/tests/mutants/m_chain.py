"""Mutants for the chain/* cases: a chained plugin keeps what its prevResult held."""

import json

from mutantlib import Mutant, chain_edit, emit, passthrough, real, TUNING


def drop_dns(r):
    r.pop("dns", None)


def drop_gateways(r):
    for ip in r.get("ips", []):
        ip.pop("gateway", None)


def drop_route_gw(r):
    for route in r.get("routes", []):
        route.pop("gw", None)


def drops_prevresult(cmd, stdin):
    """A chained plugin that prints only its own (empty) result instead of prevResult."""
    p = real(stdin)
    if cmd == "ADD" and p.returncode == 0:
        result = json.loads(p.stdout)
        result.pop("ips", None)
        result.pop("routes", None)
        emit(result)
    passthrough(p)


MUTANTS = [
    Mutant(name="chain-drops-dns", run=chain_edit(drop_dns), case="chain/keeps-prevresult", status="fail", wraps=TUNING, config="tuning.conflist"),
    Mutant(name="chain-drops-gateways", run=chain_edit(drop_gateways), case="chain/keeps-prevresult", status="fail", wraps=TUNING, config="tuning.conflist"),
    Mutant(name="chain-drops-route-gw", run=chain_edit(drop_route_gw), case="chain/keeps-prevresult", status="fail", wraps=TUNING, config="tuning.conflist"),
    Mutant(name="drops-prevresult", run=drops_prevresult, case="chain/keeps-prevresult", status="fail", wraps=TUNING, config="tuning.conflist"),
]
