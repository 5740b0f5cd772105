"""trajrec's built-in tool environments, registered with Gymnasium on import.

This module only registers ids; each env is imported when ``gymnasium.make`` first builds it.

==============================  ===================================  ===================
id                              entry point                          verification
==============================  ===================================  ===================
``trajrec/MathCalc-v0``         ``trajrec.envs.math_calc:MathCalcEnv``       rule
``trajrec/CodeRepair-v0``       ``trajrec.envs.code_repair:CodeRepairEnv``   rule
``trajrec/Shell-v0``            ``trajrec.envs.shell:ShellEnv``              environment
``trajrec/SupportTicket-v0``    ``trajrec.envs.support:SupportTicketEnv``    judge
==============================  ===================================  ===================

The envs truncate themselves at ``max_steps`` (a constructor kwarg, default 30), so they are
registered without ``max_episode_steps``.
"""

from __future__ import annotations

import gymnasium

ENTRY_POINTS: dict[str, str] = {
    "trajrec/MathCalc-v0": "trajrec.envs.math_calc:MathCalcEnv",
    "trajrec/CodeRepair-v0": "trajrec.envs.code_repair:CodeRepairEnv",
    "trajrec/Shell-v0": "trajrec.envs.shell:ShellEnv",
    "trajrec/SupportTicket-v0": "trajrec.envs.support:SupportTicketEnv",
}

#: The registered env ids, in a stable order.
ENV_IDS: tuple[str, ...] = tuple(ENTRY_POINTS)

for _env_id, _entry_point in ENTRY_POINTS.items():
    # Skip ids already present so re-importing (e.g. importlib.reload) does not warn about overrides.
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_entry_point)

__all__ = ["ENTRY_POINTS", "ENV_IDS"]
