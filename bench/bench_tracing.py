"""Tracing's cost on the hot path, in one run: the same `gateway serve` (one worker, warm
cache) minting one id, with tracing off (no OTEL_* variable) and on at 10 % sampling
(``parentbased_traceidratio``, 0.1; spans to the console exporter, i.e. the process's log).
Both run side by side and are measured in turns, best of three each.

Printed: req/s each and on ÷ off (goal: off costs nothing; on at 10 % >= 0.8).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import common

TRACED = {
    "OTEL_TRACES_EXPORTER": "console",
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.1",
    "OTEL_SERVICE_NAME": "23-gateway-bench",
}


def main() -> None:
    common.need_wrk()
    folder = Path(tempfile.mkdtemp(prefix="gw-bench-tracing-"))
    with common.devsite() as devsite_port:
        ports = {"off": common.free_port(), "on": common.free_port()}
        runs = []
        for name, port in ports.items():
            config = common.gateway_config(folder, port, devsite_port)
            command = [
                str(common.BIN / "gateway"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            env = {"GATEWAY_CONFIG": str(config), **(TRACED if name == "on" else {})}
            runs.append(common.process(command, folder / f"gateway-{name}.log", env))
        with runs[0], runs[1]:
            rates = {"off": 0.0, "on": 0.0}
            for port in ports.values():
                common.wait(f"http://127.0.0.1:{port}/healthz")
                common.mint_once(f"http://127.0.0.1:{port}", [1001])
            script = common.post_script(folder, "single", {"photo_ids": [1001]})
            for _ in range(3):
                for name, port in ports.items():
                    url = f"http://127.0.0.1:{port}/api/v1/sites/demo/tokens"
                    rates[name] = max(rates[name], common.wrk(url, script))
    print(f"mint, tracing off:            {rates['off']:8,.0f} req/s")
    print(f"mint, tracing on (10 %):      {rates['on']:8,.0f} req/s")
    print(f"tracing on ÷ off: {rates['on'] / rates['off']:.2f}   (goal >= 0.8 at 10 % sampling)")


if __name__ == "__main__":
    main()
