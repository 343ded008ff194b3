"""One error tree for the course: every error carries a hint that tells the learner what to do."""


class DocklabError(Exception):
    """Base of every error docklab raises on purpose.

    ``hint`` says what to do about it, in the learner's words.
    """

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message


class EngineError(DocklabError):
    """The Docker Engine cannot be used."""


class EngineUnavailable(EngineError):
    """Nothing answers where the engine should be."""


class EnginePermissionDenied(EngineError):
    """The engine's socket exists but this user may not open it."""


class EngineTooOld(EngineError):
    """The engine answers but speaks an API older than the course needs."""


class ImageError(DocklabError):
    """A course image could not be made present."""
