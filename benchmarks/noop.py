"""The job the benchmarks run: does nothing, returns nothing."""

from runplz import App, Image

app = App("bench-noop")


@app.function(image=Image.from_registry("python:3.11-slim"))
def noop() -> None:
    return None
