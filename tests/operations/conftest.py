"""Operations and hardening: logs, shutdown, the fuzzer and the chaos test, on real
processes. The fakes of the outside world are the background tests' own."""

from tests.actors.conftest import acme, ai, connectwise, smtp, webhooks

__all__ = ["acme", "ai", "connectwise", "smtp", "webhooks"]
