"""A hypothesis state machine driving two `ContainerEngine`s with the same operations.

Builds with random Dockerfiles and labels, then asks each engine the same
questions (has_image, latest_image, a run that reports what the image holds):
the answers must agree. The factory makes the machine for any pair.
"""

from __future__ import annotations

import tempfile
import uuid

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from runplz.domain.errors import BuildError
from runplz.ports.container_engine import BuildRequest, ContainerRun, ContextBytes, Mount

BASE = "python:3.11-slim"
NAMES = st.sampled_from(["a.txt", "b/c.txt", "d e.txt"])


def engine_comparison(make_left, make_right):
    class EngineComparison(RuleBasedStateMachine):
        tags = Bundle("tags")

        @initialize()
        def setup(self):
            self.left, self.right = make_left(), make_right()
            self.run_label = uuid.uuid4().hex[:10]
            self.built: list[str] = []

        def _both(self, call):
            outcomes = []
            for engine in (self.left, self.right):
                try:
                    outcomes.append(("ok", call(engine)))
                except BuildError:
                    outcomes.append(("BuildError", None))
            assert outcomes[0] == outcomes[1], outcomes
            return outcomes[0]

        @rule(target=tags, files=st.dictionaries(NAMES, st.text(max_size=20), max_size=3),
              workdir=st.sampled_from(["/app", "/srv/x"]), labelled=st.booleans(), parent=st.booleans())
        def build(self, files, workdir, labelled, parent):
            tag = f"runplz-machine:{uuid.uuid4().hex[:12]}"
            base = self.built[-1] if parent and self.built else BASE
            context = tuple(ContextBytes(f"ctx/{name}", text.encode()) for name, text in files.items())
            copy = '\nCOPY ["ctx/", "/data/"]' if files else ""
            labels = {"runplz.machine": self.run_label} if labelled else {}
            request = BuildRequest(tag, f"FROM {base}{copy}\nWORKDIR {workdir}\n", context, labels)
            self._both(lambda engine: engine.build(request))
            self.built.append(tag)
            return tag

        @rule()
        def bad_build(self):
            request = BuildRequest(f"runplz-machine:{uuid.uuid4().hex[:12]}", 'FROM runplz-machine-absent:never\n')
            assert self._both(lambda engine: engine.build(request))[0] == "BuildError"

        @rule(tag=tags)
        def inspect(self, tag):
            def listing(engine):
                with tempfile.TemporaryDirectory() as out:
                    code = engine.run(ContainerRun(
                        tag,
                        ("python3", "-c",
                         "import os; d = os.environ['DATA']; print(sorted(os.path.relpath(os.path.join(r, f), d) "
                         "for r, _, fs in os.walk(d) for f in fs) if os.path.isdir(d) else [], "
                         "file=open(os.environ['DEST'], 'w'))"),
                        f"runplz-machine-{uuid.uuid4().hex[:10]}",
                        env={"DEST": "/out/listing", "DATA": "/data"},
                        mounts=(Mount(out, "/out"),),
                    ))
                    with open(f"{out}/listing") as handle:
                        return code, handle.read()

            self._both(listing)

        @invariant()
        def same_answers(self):
            if not hasattr(self, "left"):
                return
            for tag in self.built[-2:]:
                assert self.left.has_image(tag) and self.right.has_image(tag)
            label = {"runplz.machine": self.run_label}
            assert self.left.latest_image(label) == self.right.latest_image(label)

    return EngineComparison
