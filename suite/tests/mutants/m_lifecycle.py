"""Mutants of the version matrix and chaining cases."""
import json

from mutantlib import emit, passthrough, real


def old_versions_wrong_shape(cmd, stdin):
    """Answers 0.1.0/0.2.0 requests with a 1.0.0-shaped result (the loopback plugin's bug)."""
    if cmd == "ADD":
        conf = json.loads(stdin)
        version = conf.get("cniVersion")
        if version in ("0.1.0", "0.2.0"):
            conf["cniVersion"] = "1.0.0"
            p = real(json.dumps(conf).encode())
            if p.returncode != 0:
                passthrough(p)
            result = json.loads(p.stdout)
            result["cniVersion"] = version
            emit(result)
    passthrough(real(stdin))


def drops_prevresult(cmd, stdin):
    """A chained plugin that prints only its own (empty) result instead of prevResult."""
    p = real(stdin)
    if cmd == "ADD" and p.returncode == 0:
        result = json.loads(p.stdout)
        result.pop("ips", None)
        result.pop("routes", None)
        emit(result)
    passthrough(p)


MUTANTS = {
    "old-versions-wrong-shape": (old_versions_wrong_shape, "matrix/add-check-del", "fail"),
    "drops-prevresult": (drops_prevresult, "chain/keeps-prevresult", "fail", "/usr/lib/cni/tuning", "tuning.conflist"),
}
