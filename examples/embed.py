"""Embedding runplz in your own tool: override the container's providers.

    python examples/embed.py
"""

from dependency_injector import providers

from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.container import make_container
from runplz.loader import load_app


class LoggingRunner:
    """A CommandRunner that records every command before running it."""

    def __init__(self, inner):
        self.inner = inner
        self.commands = []

    def run(self, argv, **kwargs):
        self.commands.append(list(argv))
        return self.inner.run(argv, **kwargs)


runner = LoggingRunner(SubprocessRunner())
container = make_container()
container.command_runner.override(providers.Object(runner))

module, app = load_app("examples/hello.py")
app.bind("local", outputs_dir="out", native=True, container=container)
print(module.count.remote(steps=1))
for argv in runner.commands:
    print("ran:", " ".join(argv[:3]), "...")
