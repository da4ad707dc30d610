"""Time to rehearse all three stacks (``dataforge rehearse``): render, artifact builds from a warm cache,
the layers' x86-64 twins, a moto server and a Kafka broker per stack, every function from its artifacts
with every trigger, the MSK IAM client checks, and every Glue job for every trigger action on local Spark
(one Spark process per stack). Goal: 240 s here, what a reviewer waits for before approving a stack
change; the Glue part (local Spark) is most of it.

    .venv/bin/python bench/rehearsal.py

Prints per-stack figures, then, on the last three lines, the total, the goal and the ratio. Run it once
before measuring when the caches are cold (the layer and native wheels build once into .cache/).
"""

from __future__ import annotations

import time

GOAL_SECONDS = 240.0
STACKS = ("dev", "staging", "prod")


def main() -> None:
    started = time.perf_counter()
    from devkit.rehearse.run import rehearse
    from infra.plan import enable_bytecode_cache

    enable_bytecode_cache()
    print(f"import: {time.perf_counter() - started:6.2f} s")
    for stack in STACKS:
        report = rehearse(stack)
        green = sum(check.ok for check in report.checks)
        kinds = sorted({check.kind for check in report.checks})
        print(f"{stack:8s} {report.seconds:6.2f} s  {green}/{len(report.checks)} checks green ({', '.join(kinds)})"
              f"{'' if report.ok else '  FAILED'}")
    total = time.perf_counter() - started
    print(f"rehearse all stacks: {total:.2f} s")
    print(f"goal: {GOAL_SECONDS:.2f} s")
    print(f"ratio: {total / GOAL_SECONDS:.2f}x of goal")


if __name__ == "__main__":
    main()
