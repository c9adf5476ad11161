"""A local fake Modal control plane for the real `modal` client (pinned: modal 1.6.4).

`ModalFake.start(folder)` serves the gRPC API the client uses for `app.run()` + `f.remote()`,
records function/image/secret definitions, and runs each input for real in a chrooted child
through `modal._container_entrypoint`. See fake.py for the API.
"""

from .fake import ModalFake

__all__ = ["ModalFake"]
