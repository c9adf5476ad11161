"""A run's job that `RunStore.stop_job` could not wholly stop. Pure."""

from __future__ import annotations

from .errors import RunplzError


def _pids(pids: tuple[int, ...]) -> str:
    return ", ".join(str(pid) for pid in pids)


class JobLeftRunning(RunplzError):
    """`stop_job` found ``found`` processes of the run's job and signalled
    every one, but ``alive`` (pids) were still there after SIGKILL and a wait
    (stuck in the kernel, in state D say); ``unchecked`` (pids) are processes
    in uninterruptible sleep whose environment could not be read, so whether
    they are the job's is not known (they were not signalled)."""

    def __init__(self, found: int, alive: tuple[int, ...] = (), unchecked: tuple[int, ...] = ()) -> None:
        self.found, self.alive, self.unchecked = found, tuple(alive), tuple(unchecked)
        super().__init__(self.words())

    def words(self) -> str:
        """What happened, in words (no leading capital)."""
        parts = []
        if self.alive:
            n = len(self.alive)
            parts.append(
                f"{n} process{'es' if n != 1 else ''} of its job would not stop (pid{'s' if n != 1 else ''} "
                f"{_pids(self.alive)}), even after SIGKILL; {self.found - n} of {self.found} stopped"
            )
        elif self.found:
            parts.append(f"stopped its job ({self.found} process{'es' if self.found != 1 else ''})")
        else:
            parts.append("no process of its job was found running")
        if self.unchecked:
            n = len(self.unchecked)
            parts.append(
                f"{n} process{'es' if n != 1 else ''} in uninterruptible sleep could not be checked for its mark "
                f"(pid{'s' if n != 1 else ''} {_pids(self.unchecked)}): stop {'them' if n != 1 else 'it'} "
                f"by hand if {'they are' if n != 1 else 'it is'} the job's"
            )
        return "; ".join(parts)
