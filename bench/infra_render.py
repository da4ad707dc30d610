"""Time to render and policy-check all three stacks under the mock engine (goal: under 20 s here).

    .venv/bin/python bench/infra_render.py

Prints per-stack figures, then, on the last three lines, the total, the goal and the ratio. The
first figure includes importing pulumi-aws (cached bytecode under .cache/pycache after one run).
"""

from __future__ import annotations

import time

GOAL_SECONDS = 20.0


def main() -> None:
    started = time.perf_counter()
    cpu_started = time.process_time()
    from infra import plan as engine

    engine.enable_bytecode_cache()
    from infra.policy.checks import check_all

    imported = time.perf_counter()
    print(f"import engine + pulumi-aws: {imported - started:6.2f} s")
    for stack in ("dev", "staging", "prod"):
        t0 = time.perf_counter()
        rendered = engine.render(stack)
        t1 = time.perf_counter()
        violations = check_all(stack, rendered.resources)
        t2 = time.perf_counter()
        print(f"{stack:8s} {len(rendered.resources):4d} resources  render {t1 - t0:6.2f} s  "
              f"check {t2 - t1:5.2f} s  violations {len(violations)}")
    total = time.perf_counter() - started
    print(f"cpu time (this process): {time.process_time() - cpu_started:.2f} s")
    print(f"render+check all stacks: {total:.2f} s")
    print(f"goal: {GOAL_SECONDS:.2f} s")
    print(f"ratio: {total / GOAL_SECONDS:.2f}x of goal")


if __name__ == "__main__":
    main()
