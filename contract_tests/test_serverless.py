"""ServerlessPlatform contract: the real modal client against the fake control plane, and FakeModal."""

from __future__ import annotations

import pytest

from runplz.adapters.fake_modal import FakeModal
from runplz.adapters.modal_platform import ModalPlatform

from testsupport.modal_fixture import modal_fake  # noqa: F401 (a fixture)

from .suites.serverless import AbstractServerlessTests, ServerlessFixtures


@pytest.mark.real
class TestModalPlatform(AbstractServerlessTests, ServerlessFixtures):
    @pytest.fixture
    def platform(self, modal_fake):
        return ModalPlatform()


class TestFakeModal(AbstractServerlessTests, ServerlessFixtures):
    @pytest.fixture
    def platform(self):
        return FakeModal()
